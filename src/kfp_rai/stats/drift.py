"""Drift statistics between a reference and a current sample of one column.

Numeric: population stability index over the reference's quantile bins (missing values form a bin
of their own), and the two-sample Kolmogorov-Smirnov test and Wasserstein distance from quantile
sketches (see :mod:`kfp_rai.stats.summary`). Categorical: chi-square test of the
category counts and the Jensen-Shannon distance of the shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_EPS = 1e-4  # floor for empty bins so PSI stays finite (the customary practice)


@dataclass(frozen=True)
class Binned:
    """Counts of a reference and a current sample over the same bins, with the bins' labels."""

    labels: tuple[str, ...]
    reference: np.ndarray
    current: np.ndarray

    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        return self.reference / max(self.reference.sum(), 1), self.current / max(self.current.sum(), 1)


def quantile_bins(reference: np.ndarray, current: np.ndarray, bins: int) -> Binned:
    """Count both samples over ``bins`` quantile bins of the reference, plus a bin for missing."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    ref_ok, cur_ok = reference[~np.isnan(reference)], current[~np.isnan(current)]
    if ref_ok.size == 0:
        raise ValueError("the reference column holds only missing values")
    edges = np.unique(np.quantile(ref_ok, np.linspace(0, 1, bins + 1)[1:-1]))

    def counts(ok: np.ndarray, n: int) -> np.ndarray:
        return np.append(np.bincount(np.searchsorted(edges, ok, side="right"), minlength=len(edges) + 1), n - ok.size)

    bounds = [f"{e:.3g}" for e in edges]
    labels = (
        [f"< {bounds[0]}"] + [f"[{a}, {b})" for a, b in zip(bounds, bounds[1:], strict=False)] + [f">= {bounds[-1]}"]
        if bounds
        else ["all"]
    )
    return Binned((*labels, "missing"), counts(ref_ok, reference.size), counts(cur_ok, current.size))


def psi(binned: Binned) -> float:
    """PSI = sum((c - r) * ln(c / r)) over the bins' shares."""
    r, c = (np.maximum(s, _EPS) for s in binned.shares())
    return float(np.sum((c - r) * np.log(c / r)))


def population_stability_index(reference: np.ndarray, current: np.ndarray, *, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference`` over the reference's quantile bins."""
    return psi(quantile_bins(reference, current, bins))


def categorical_test(binned: Binned) -> tuple[float, float, float]:
    """(chi-square statistic, p-value, Jensen-Shannon distance in bits) of two category counts.

    The chi-square test of independence of the 2 x k table, with Yates' correction when k = 2, as
    ``scipy.stats.chi2_contingency`` computes it (a test checks they agree), written out so a drift
    check does not pay scipy.stats' import (0.7 s here).
    """
    from scipy.special import chdtrc

    table = np.vstack([binned.reference, binned.current]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    dof = table.shape[1] - 1
    if dof == 1:  # Yates' continuity correction
        diff = expected - table
        table = table + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(((table - expected) ** 2 / expected).sum())
    ref_share, cur_share = binned.shares()
    return stat, float(chdtrc(dof, stat)), jensen_shannon(ref_share, cur_share)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (the square root of the divergence) in bits, as scipy's ``jensenshannon(base=2)``."""
    p, q = np.asarray(p, dtype=float) / np.sum(p), np.asarray(q, dtype=float) / np.sum(q)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def psi_counts(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of two count vectors over the same bins."""
    return psi(Binned(tuple(str(i) for i in range(len(reference))), np.asarray(reference), np.asarray(current)))


_GRID = np.linspace(0.0, 1.0, 2001)


def ks_from_sketches(reference: Any, current: Any) -> float | None:
    """The two-sample KS statistic D from two KLL sketches, or None when one is empty.

    D is evaluated at both sketches' quantiles on a grid of 2001 ranks; its error is at most the two
    sketches' rank errors added (about 2.6% at k = 200; measured in benchmarks/RESULTS.md). No
    p-value: at a million rows that error alone would be "significant", so one would mislead.
    """
    if reference is None or current is None or reference.is_empty() or current.is_empty():
        return None  # a summary without a sketch (serving's traffic windows keep no values)
    points = np.unique(np.concatenate([reference.get_quantiles(_GRID), current.get_quantiles(_GRID)]))
    f_ref = np.asarray(reference.get_cdf(points, True), dtype=float)[:-1]
    f_cur = np.asarray(current.get_cdf(points, True), dtype=float)[:-1]
    return float(np.max(np.abs(f_ref - f_cur)))


def wasserstein_from_sketches(reference: Any, current: Any) -> float | None:
    """The 1-Wasserstein distance (integral of the quantile functions' gap) from two KLL sketches."""
    if reference is None or current is None or reference.is_empty() or current.is_empty():
        return None
    ranks = (np.arange(2000) + 0.5) / 2000
    gap = np.asarray(reference.get_quantiles(ranks), dtype=float) - np.asarray(
        current.get_quantiles(ranks), dtype=float
    )
    return float(np.mean(np.abs(gap)))
