"""Per-group performance and fairness metrics of a binary classifier, from confusion-cell counts.

Definitions are fairlearn's (selection rate, TPR, FPR; demographic parity difference and ratio
between groups; equalized-odds difference as the larger of the TPR and FPR gaps), computed from one
``bincount`` per attribute instead of a ``MetricFrame``: the same numbers (tests compare them with
fairlearn's), without fairlearn's import in the task, and a bootstrap from the same counts. One
difference on purpose: a rate with an empty denominator (TPR of a group without positives) is
undefined here, where fairlearn returns 0, so a gate can never pass on it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kfp_rai.stats.bootstrap import bootstrap_cell_counts, cell_counts, disparities, interval, rates

DISPARITIES = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference")


@dataclass(frozen=True)
class GroupMetrics:
    """One group's size, rates, ROC AUC and the bootstrap interval of each rate."""

    group: str
    count: int
    accuracy: float
    selection_rate: float
    true_positive_rate: float
    false_positive_rate: float
    roc_auc: float
    intervals: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class AttributeFairness:
    """Per-group metrics of one sensitive attribute (or an intersection) and its disparities."""

    attribute: str
    intersectional: bool
    gated: bool
    groups: tuple[GroupMetrics, ...]
    demographic_parity_difference: float
    demographic_parity_ratio: float
    equalized_odds_difference: float
    intervals: dict[str, tuple[float, float]]

    def disparities(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in DISPARITIES}


def safe_roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC, or NaN where it is undefined (one class only)."""
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, scores))


def _intervals(
    samples: dict[str, np.ndarray], confidence: float, column: int | None = None
) -> dict[str, tuple[float, float]]:
    out = {}
    for name, values in samples.items():
        found = interval(values if column is None else values[:, column], confidence)
        if found is not None:
            out[name] = found
    return out


def overall_metrics(
    y: np.ndarray, y_pred: np.ndarray, scores: np.ndarray, *, n_boot: int, confidence: float, seed: int
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Accuracy, selection rate, TPR, FPR and ROC AUC over all rows, and the rates' intervals."""
    zeros = np.zeros(len(y), dtype=np.int64)
    values = {k: float(v[0]) for k, v in rates(cell_counts(zeros, y, y_pred, 1)).items()}
    values["roc_auc"] = safe_roc_auc(y, scores)
    found: dict[str, tuple[float, float]] = {}
    if n_boot:
        found = _intervals(rates(bootstrap_cell_counts(zeros, y, y_pred, 1, n_boot=n_boot, seed=seed)), confidence, 0)
    return values, found


def attribute_fairness(
    name: str,
    groups: pd.Series,
    y: np.ndarray,
    y_pred: np.ndarray,
    scores: np.ndarray,
    *,
    gated: bool,
    intersectional: bool,
    n_boot: int,
    confidence: float,
    seed: int,
) -> AttributeFairness:
    """Metrics per group of ``groups`` (one label per row) and the disparities between them."""
    codes, labels = pd.factorize(groups.to_numpy(), sort=True)
    counts = cell_counts(codes, y, y_pred, len(labels))
    point = rates(counts)
    between = disparities(counts)
    # Equalized odds is undefined when any group's TPR or FPR is: the gate must not pass on it.
    defined = not np.isnan(point["true_positive_rate"]).any() and not np.isnan(point["false_positive_rate"]).any()
    eo = float(between["equalized_odds_difference"]) if defined else float("nan")
    group_intervals: list[dict[str, tuple[float, float]]] = [{} for _ in labels]
    disparity_intervals: dict[str, tuple[float, float]] = {}
    if n_boot:
        boot = bootstrap_cell_counts(codes, y, y_pred, len(labels), n_boot=n_boot, seed=seed)
        boot_rates = rates(boot)
        group_intervals = [_intervals(boot_rates, confidence, i) for i in range(len(labels))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            disparity_intervals = _intervals(disparities(boot), confidence)
    metrics = tuple(
        GroupMetrics(
            group=str(label),
            count=int(counts[i].sum()),
            accuracy=float(point["accuracy"][i]),
            selection_rate=float(point["selection_rate"][i]),
            true_positive_rate=float(point["true_positive_rate"][i]),
            false_positive_rate=float(point["false_positive_rate"][i]),
            roc_auc=safe_roc_auc(y[codes == i], scores[codes == i]),
            intervals=group_intervals[i],
        )
        for i, label in enumerate(labels)
    )
    return AttributeFairness(
        attribute=name,
        intersectional=intersectional,
        gated=gated,
        groups=metrics,
        demographic_parity_difference=float(between["demographic_parity_difference"]),
        demographic_parity_ratio=float(between["demographic_parity_ratio"]),
        equalized_odds_difference=eo,
        intervals=disparity_intervals,
    )
