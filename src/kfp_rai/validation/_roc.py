"""ROC curves kept with a report: the overall curve and each group's, exact from the rows or from
score histograms (the streamed scored path), thinned so the JSON stays bounded."""

from __future__ import annotations

import numpy as np

# Points kept of a ROC curve: the overall one, and each group's (a chart's line, not a table: the JSON
# stays bounded however many rows and groups there are).
ROC_POINTS = 101
GROUP_ROC_POINTS = 51


def _thinned(fpr: np.ndarray, tpr: np.ndarray, thr: np.ndarray, points: int) -> dict[str, list[float]]:
    """At most ``points`` of a ROC curve, evenly spaced along it, the first and last always kept."""
    idx = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    return {
        "fpr": [round(float(v), 6) for v in fpr[idx]],
        "tpr": [round(float(v), 6) for v in tpr[idx]],
        "threshold": [round(float(v), 6) for v in thr[idx]],
    }


def roc_points(y: np.ndarray, scores: np.ndarray, points: int = ROC_POINTS) -> dict[str, list[float]]:
    """The exact ROC curve of ``scores`` against the 0/1 ``y``, thinned; empty with one class only."""
    from sklearn.metrics import roc_curve

    if len(np.unique(y)) < 2:
        return {}
    fpr, tpr, thr = roc_curve(y, scores)
    return _thinned(fpr, tpr, np.where(np.isfinite(thr), thr, 1.0), points)


def roc_points_from_histogram(hist: np.ndarray, points: int = ROC_POINTS) -> dict[str, list[float]]:
    """The ROC curve at a (2, bins) score histogram's bin edges (thresholds from high to low), thinned;
    empty when a class is empty."""
    from kfp_rai.stats.groups import SCORE_BINS

    neg, pos = hist[0][::-1].cumsum(), hist[1][::-1].cumsum()
    if neg[-1] == 0 or pos[-1] == 0:
        return {}
    fpr = np.concatenate([[0.0], neg / neg[-1]])
    tpr = np.concatenate([[0.0], pos / pos[-1]])
    thr = np.concatenate([[1.0], (np.arange(SCORE_BINS)[::-1]) / SCORE_BINS])
    return _thinned(fpr, tpr, thr, points)
