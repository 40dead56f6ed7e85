"""Bootstrap intervals of count-based group metrics, from resampled confusion-cell counts.

fairlearn's ``MetricFrame(n_boot=...)`` rebuilds a whole MetricFrame per resample; every metric we
gate on (accuracy, selection rate, TPR, FPR) is a ratio of per-group confusion counts, so one
``bincount`` per resample gives all of them at once (see benchmarks/bench_bootstrap.py for the
measured difference). The definitions match fairlearn's; tests check the point estimates agree.
"""

from __future__ import annotations

import warnings

import numpy as np

# Cell layout per group: index = y_true * 2 + y_pred -> 0=TN, 1=FP, 2=FN, 3=TP
_CELLS = 4


def cell_counts(group_codes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_groups: int) -> np.ndarray:
    """Confusion counts, shape (n_groups, 4): TN, FP, FN, TP."""
    codes = group_codes * _CELLS + y_true * 2 + y_pred
    return np.bincount(codes, minlength=n_groups * _CELLS).reshape(n_groups, _CELLS)


def bootstrap_cell_counts(
    group_codes: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_groups: int,
    *,
    n_boot: int,
    seed: int,
    chunk: int = 50,
) -> np.ndarray:
    """Confusion counts of ``n_boot`` resamples with replacement, shape (n_boot, n_groups, 4)."""
    rng = np.random.default_rng(seed)
    codes = (group_codes * _CELLS + y_true * 2 + y_pred).astype(np.int64)
    n = len(codes)
    width = n_groups * _CELLS
    out = np.empty((n_boot, width), dtype=np.int64)
    for start in range(0, n_boot, chunk):  # chunks bound memory to chunk * n indices
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        offsets = (np.arange(stop - start) * width)[:, None]
        out[start:stop] = np.bincount((codes[idx] + offsets).ravel(), minlength=(stop - start) * width).reshape(
            stop - start, width
        )
    return out.reshape(n_boot, n_groups, _CELLS)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, selection_rate, TPR, FPR from counts (..., n_groups, 4); NaN where undefined."""
    tn, fp, fn, tp = (counts[..., i].astype(float) for i in range(_CELLS))
    n = tn + fp + fn + tp
    return {
        "accuracy": _div(tn + tp, n),
        "selection_rate": _div(fp + tp, n),
        "true_positive_rate": _div(tp, tp + fn),
        "false_positive_rate": _div(fp, fp + tn),
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


def interval(samples: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """Percentile interval over the first axis, ignoring undefined resamples."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return (float(low), float(high))
