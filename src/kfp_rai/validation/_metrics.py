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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kfp_rai.stats.bootstrap import bootstrap_counts, bootstrap_roc_auc, cell_counts, disparities, interval, rates
from kfp_rai.stats.groups import GroupCounts

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
    too_small: bool = False  # below the policy's minimum group size: no interval, never a zero-width one
    precision: float = float("nan")  # positive predictive value; undefined without a positive prediction


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
    """Accuracy, selection rate, TPR, FPR and ROC AUC over all rows, and their intervals (ROC AUC's
    from the score histograms, resampled within each class)."""
    zeros = np.zeros(len(y), dtype=np.int64)
    values = {k: float(v[0]) for k, v in rates(cell_counts(zeros, y, y_pred, 1)).items()}
    values["roc_auc"] = safe_roc_auc(y, scores)
    found: dict[str, tuple[float, float]] = {}
    if n_boot:
        boot = bootstrap_counts(cell_counts(zeros, y, y_pred, 1), n_boot=n_boot, seed=seed)
        found = _intervals(rates(boot), confidence, 0)
        hist = GroupCounts.of("all", zeros, y, y_pred, scores).scores
        if hist is not None:
            auc = interval(
                bootstrap_roc_auc(hist[0], n_boot=n_boot, seed=[seed, 1 << 30]), confidence
            )  # apart from the groups [seed, i]
            if auc is not None:
                found["roc_auc"] = auc
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
    min_group_size: int = 0,
) -> AttributeFairness:
    """Metrics per group of ``groups`` (one label per row) and the disparities between them (the
    rows' exact ROC AUC per group; everything else from :func:`fairness_from_counts`)."""
    counts = GroupCounts.of(name, groups.to_numpy(), y, y_pred, scores)
    labels = groups.to_numpy().astype(str)
    aucs = [safe_roc_auc(y[labels == label], scores[labels == label]) for label in counts.labels]
    return fairness_from_counts(
        counts,
        aucs=aucs,
        gated=gated,
        intersectional=intersectional,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        min_group_size=min_group_size,
    )


def _undefined() -> dict[str, np.ndarray]:
    return {name: np.asarray(float("nan")) for name in DISPARITIES}


def fairness_from_counts(
    counts: GroupCounts,
    *,
    aucs: Sequence[float],
    gated: bool,
    intersectional: bool,
    n_boot: int,
    confidence: float,
    seed: int,
    min_group_size: int = 0,
) -> AttributeFairness:
    """Per-group metrics and disparities from confusion counts; bootstrap intervals drawn from the
    counts (:func:`kfp_rai.stats.bootstrap.bootstrap_counts`), so their cost does not grow with rows;
    ROC AUC intervals from the groups' score histograms when ``counts`` holds them.

    A group of fewer than ``min_group_size`` rows gets no interval: resampling 20 rows with no
    positive prediction gives 0.000-0.000, a certainty the data cannot give. It is too small to
    judge, and the disparities are taken between the groups that are not (with fewer than two
    such groups they are undefined, which the gate does not pass)."""
    cells = counts.cells
    point = rates(cells)
    judged = [i for i in range(len(counts.labels)) if int(cells[i].sum()) >= min_group_size]
    between = disparities(cells[judged]) if len(judged) >= 2 else _undefined()
    # Equalized odds is undefined when a judged group's TPR or FPR is: the gate must not pass on it.
    defined = (
        not np.isnan(point["true_positive_rate"][judged]).any()
        and not np.isnan(point["false_positive_rate"][judged]).any()
    )
    eo = float(between["equalized_odds_difference"]) if defined else float("nan")
    group_intervals: list[dict[str, tuple[float, float]]] = [{} for _ in counts.labels]
    disparity_intervals: dict[str, tuple[float, float]] = {}
    if n_boot:
        boot = bootstrap_counts(cells, n_boot=n_boot, seed=seed)
        boot_rates = rates(boot)
        group_intervals = [_intervals(boot_rates, confidence, i) for i in range(len(counts.labels))]
        if counts.scores is not None:
            for i in range(len(counts.labels)):
                auc = interval(bootstrap_roc_auc(counts.scores[i], n_boot=n_boot, seed=[seed, i]), confidence)
                if auc is not None:
                    group_intervals[i]["roc_auc"] = auc
        if len(judged) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                disparity_intervals = _intervals(disparities(boot[:, judged]), confidence)
    metrics = tuple(
        GroupMetrics(
            group=label,
            count=int(cells[i].sum()),
            accuracy=float(point["accuracy"][i]),
            selection_rate=float(point["selection_rate"][i]),
            true_positive_rate=float(point["true_positive_rate"][i]),
            false_positive_rate=float(point["false_positive_rate"][i]),
            precision=float(point["precision"][i]),
            roc_auc=float(aucs[i]),
            intervals={} if int(cells[i].sum()) < min_group_size else group_intervals[i],
            too_small=int(cells[i].sum()) < min_group_size,
        )
        for i, label in enumerate(counts.labels)
    )
    return AttributeFairness(
        attribute=counts.attribute,
        intersectional=intersectional,
        gated=gated,
        groups=metrics,
        demographic_parity_difference=float(between["demographic_parity_difference"]),
        demographic_parity_ratio=float(between["demographic_parity_ratio"]),
        equalized_odds_difference=eo,
        intervals=disparity_intervals,
    )
