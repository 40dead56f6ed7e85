"""Bootstrap intervals of count-based group metrics, from resampled confusion-cell counts.

fairlearn's ``MetricFrame(n_boot=...)`` rebuilds a whole MetricFrame per resample from the rows;
every metric we gate on (accuracy, selection rate, TPR, FPR, precision) is a ratio of per-group
confusion counts, and a row-level resample's counts follow a multinomial over those cells, so the
resamples are drawn from the counts: 1,000 of them cost the same at 1k or 100M rows (measured in
benchmarks/RESULTS.md). The definitions match fairlearn's; tests check the point estimates agree
(1e-12) and that the intervals agree with a row-level bootstrap within Monte-Carlo error.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

# Cell layout per group: index = y_true * 2 + y_pred -> 0=TN, 1=FP, 2=FN, 3=TP
_CELLS = 4


def cell_counts(group_codes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_groups: int) -> np.ndarray:
    """Confusion counts, shape (n_groups, 4): TN, FP, FN, TP."""
    codes = group_codes * _CELLS + y_true * 2 + y_pred
    return np.bincount(codes, minlength=n_groups * _CELLS).reshape(n_groups, _CELLS)


def bootstrap_counts(counts: np.ndarray, *, n_boot: int, seed: int, stratified: bool = False) -> np.ndarray:
    """Cell counts of ``n_boot`` bootstrap resamples, shape (n_boot, *counts.shape).

    Resampling n rows with replacement gives cell counts that follow Multinomial(n, counts / n), so
    the resamples are drawn from that directly: the cost depends on the number of cells (groups x
    confusion cells), never on rows. ``stratified`` keeps each group's size fixed (one multinomial
    per group, over its own cells), for designs that sample groups separately.
    """
    counts = np.asarray(counts, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if counts.sum() == 0:
        return np.zeros((n_boot, *counts.shape), dtype=np.int64)
    if not stratified:
        flat = counts.ravel()
        drawn = rng.multinomial(int(flat.sum()), flat / flat.sum(), size=n_boot)
        return drawn.reshape(n_boot, *counts.shape)
    out = np.zeros((n_boot, *counts.shape), dtype=np.int64)
    for g in range(counts.shape[0]):
        size = int(counts[g].sum())
        if size:
            out[:, g] = rng.multinomial(size, counts[g] / size, size=n_boot)
    return out


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, selection_rate, TPR, FPR, precision from counts (..., n_groups, 4); NaN where undefined."""
    tn, fp, fn, tp = (counts[..., i].astype(float) for i in range(_CELLS))
    n = tn + fp + fn + tp
    return {
        "accuracy": _div(tn + tp, n),
        "selection_rate": _div(fp + tp, n),
        "true_positive_rate": _div(tp, tp + fn),
        "false_positive_rate": _div(fp, fp + tn),
        "precision": _div(tp, tp + fp),
    }


def disparities(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Between-group difference/ratio of selection rate and the equalized-odds difference."""
    r = rates(counts)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: a resample without the group

        def spread(x: np.ndarray) -> np.ndarray:
            return np.asarray(np.nanmax(x, axis=-1) - np.nanmin(x, axis=-1))

        sel = r["selection_rate"]
        return {
            "demographic_parity_difference": spread(sel),
            "demographic_parity_ratio": _div(np.nanmin(sel, axis=-1), np.nanmax(sel, axis=-1)),
            "equalized_odds_difference": np.fmax(spread(r["true_positive_rate"]), spread(r["false_positive_rate"])),
        }


def bootstrap_roc_auc(hist: np.ndarray, *, n_boot: int, seed: int | Sequence[int]) -> np.ndarray:
    """ROC AUC of ``n_boot`` resamples of a (2, bins) histogram of negatives' and positives' scores.

    Each class is resampled at its own size (multinomial over its score bins): a bootstrap
    stratified by class, which keeps every resample's AUC defined. NaN when a class is empty.
    """
    rng = np.random.default_rng(seed)
    neg, pos = np.asarray(hist[0], dtype=np.int64), np.asarray(hist[1], dtype=np.int64)
    n_neg, n_pos = int(neg.sum()), int(pos.sum())
    if n_neg == 0 or n_pos == 0:
        return np.full(n_boot, np.nan)
    used = (neg > 0) | (pos > 0)  # empty bins change nothing; dropping them keeps the order
    b_neg = rng.multinomial(n_neg, neg[used] / n_neg, size=n_boot).astype(float)
    b_pos = rng.multinomial(n_pos, pos[used] / n_pos, size=n_boot).astype(float)
    below = np.cumsum(b_neg, axis=1) - b_neg
    auc: np.ndarray = ((b_pos * below).sum(axis=1) + 0.5 * (b_pos * b_neg).sum(axis=1)) / (n_neg * n_pos)
    return auc


def interval(samples: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """Percentile interval over the first axis, ignoring undefined resamples."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return (float(low), float(high))
