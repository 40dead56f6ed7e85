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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kfp_rai.stats.bootstrap import bootstrap_counts, bootstrap_roc_auc, cell_counts, disparities, interval, rates
from kfp_rai.stats.groups import GroupCounts
from kfp_rai.validation._roc import GROUP_ROC_POINTS, roc_points, roc_points_from_histogram

DISPARITIES = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference")


@dataclass(frozen=True)
class GroupMetrics:
    """One group's size, rates, ROC AUC and the bootstrap interval of each rate, its confusion cells
    and its ROC curve (the numbers its charts and tables are drawn from)."""

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
    # metric -> why it is too small to judge: computed on too few of the cases it is about (TPR on
    # positives, FPR on negatives, precision on predicted positives, ROC AUC on both classes)
    unjudged: dict[str, str] = field(default_factory=dict)
    # confusion cells (true negatives, false positives, false negatives, true positives): they sum to
    # ``count``, and every rate above is a ratio of them
    cells: tuple[int, int, int, int] = (0, 0, 0, 0)
    # the group's ROC curve ("fpr", "tpr", "threshold"; at most GROUP_ROC_POINTS points), empty for a
    # group whose ROC AUC is not judged (too few rows, positives or negatives): no curve to read
    roc: dict[str, list[float]] = field(default_factory=dict)

    @property
    def judged_roc(self) -> bool:
        return bool(self.roc) and not self.too_small and "roc_auc" not in self.unjudged


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
    min_positives: int = 0,
    min_negatives: int = 0,
) -> AttributeFairness:
    """Metrics per group of ``groups`` (one label per row) and the disparities between them (the
    rows' exact ROC AUC per group; everything else from :func:`fairness_from_counts`)."""
    counts = GroupCounts.of(name, groups.to_numpy(), y, y_pred, scores)
    labels = groups.to_numpy().astype(str)
    aucs = [safe_roc_auc(y[labels == label], scores[labels == label]) for label in counts.labels]
    rocs = [roc_points(y[labels == label], scores[labels == label], GROUP_ROC_POINTS) for label in counts.labels]
    return fairness_from_counts(
        counts,
        aucs=aucs,
        rocs=rocs,
        gated=gated,
        intersectional=intersectional,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        min_group_size=min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
    )


def _undefined() -> dict[str, np.ndarray]:
    return {name: np.asarray(float("nan")) for name in DISPARITIES}


# (successes, cases) of each rate from one group's cells (TN, FP, FN, TP)
_RATE_CASES = {
    "accuracy": ((0, 3), (0, 1, 2, 3)),
    "selection_rate": ((1, 3), (0, 1, 2, 3)),
    "true_positive_rate": ((3,), (2, 3)),
    "false_positive_rate": ((1,), (0, 1)),
    "precision": ((3,), (1, 3)),
}


def _rate_interval(
    name: str, cells: np.ndarray, bootstrap: tuple[float, float] | None, confidence: float
) -> tuple[float, float] | None:
    """A rate's bootstrap interval, or its Wilson score interval where the bootstrap degenerates (no
    successes or no failures among its cases: every resample then gives the same rate, a zero-width
    interval the data cannot support). Wilson, not Clopper-Pearson: its coverage is close to the
    nominal level at small counts, where Clopper-Pearson's is conservative; both are never zero-width."""
    from kfp_rai.stats.intervals import wilson_interval

    hits, cases = (int(cells[list(idx)].sum()) for idx in _RATE_CASES[name])
    if cases == 0:
        return None
    if bootstrap is None or hits in (0, cases) or bootstrap[0] == bootstrap[1]:
        return wilson_interval(hits, cases, confidence)
    return bootstrap


def small_counts(cells: np.ndarray, min_positives: int, min_negatives: int) -> dict[str, str]:
    """The metrics of one group (cells TN, FP, FN, TP) computed on fewer cases than the minimums,
    each with its count: a rate from one positive is no evidence of anything."""
    tn, fp, fn, tp = (int(v) for v in cells)
    pos, neg, predicted = tp + fn, tn + fp, tp + fp
    out = {}
    if pos < min_positives:
        out["true_positive_rate"] = f"{pos} positive{'s' * (pos != 1)} < minimum {min_positives}"
        out["roc_auc"] = out["true_positive_rate"]
    if neg < min_negatives:
        out["false_positive_rate"] = f"{neg} negative{'s' * (neg != 1)} < minimum {min_negatives}"
        out.setdefault("roc_auc", out["false_positive_rate"])
    if predicted < min_positives:
        out["precision"] = f"{predicted} predicted positive{'s' * (predicted != 1)} < minimum {min_positives}"
    return out


def fairness_from_counts(
    counts: GroupCounts,
    *,
    aucs: Sequence[float],
    rocs: Sequence[dict[str, list[float]]] | None = None,
    gated: bool,
    intersectional: bool,
    n_boot: int,
    confidence: float,
    seed: int,
    min_group_size: int = 0,
    min_positives: int = 0,
    min_negatives: int = 0,
) -> AttributeFairness:
    """Per-group metrics and disparities from confusion counts; bootstrap intervals drawn from the
    counts (:func:`kfp_rai.stats.bootstrap.bootstrap_counts`), so their cost does not grow with rows;
    ROC AUC intervals from the groups' score histograms when ``counts`` holds them.

    A group of fewer than ``min_group_size`` rows gets no interval: resampling 20 rows with no
    positive prediction gives 0.000-0.000, a certainty the data cannot give. It is too small to
    judge, and the disparities are taken between the groups that are not (with fewer than two
    such groups they are undefined, which the gate does not pass). Within a judged group, a rate
    computed on fewer than ``min_positives`` positives (TPR, precision: predicted positives) or
    ``min_negatives`` negatives (FPR) is too small to judge (:func:`small_counts`); equalized odds
    is taken between the groups whose TPR and FPR are both judged. A rate whose bootstrap collapses
    (no successes or no failures) gets its Wilson interval instead (:func:`_rate_interval`). The
    demographic-parity ratio with a zero side (a judged group selected never, or none selected at
    all) is undefined: a ratio to or of nothing says nothing; the difference still judges the gap.

    Each group keeps its confusion cells and its ROC curve: ``rocs`` (one per group, exact from the
    rows), else from the groups' score histograms when ``counts`` holds them; a group whose ROC AUC
    is not judged keeps no curve."""
    cells = counts.cells
    if rocs is None:
        rocs = [
            roc_points_from_histogram(counts.scores[i], GROUP_ROC_POINTS) if counts.scores is not None else {}
            for i in range(len(counts.labels))
        ]
    point = rates(cells)
    judged = [i for i in range(len(counts.labels)) if int(cells[i].sum()) >= min_group_size]
    unjudged = [small_counts(cells[i], min_positives, min_negatives) for i in range(len(counts.labels))]
    odds = [
        i
        for i in judged
        if not {"true_positive_rate", "false_positive_rate"} & unjudged[i].keys()
        and not np.isnan(point["true_positive_rate"][i])
        and not np.isnan(point["false_positive_rate"][i])
    ]
    between = disparities(cells[judged]) if len(judged) >= 2 else _undefined()
    # Equalized odds only between groups whose TPR and FPR can be judged; with fewer than two it is
    # undefined, and a group left out says why in the gate (the gate does not pass on it).
    eo = float(disparities(cells[odds])["equalized_odds_difference"]) if len(odds) >= 2 else float("nan")
    selected = point["selection_rate"][judged] if judged else np.empty(0)
    zero_side = bool(judged) and (np.nanmin(selected) == 0 or np.nanmax(selected) == 0)
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
        group_intervals = [
            {
                **found,
                **{
                    name: bound
                    for name in _RATE_CASES
                    if (bound := _rate_interval(name, cells[i], found.get(name), confidence)) is not None
                },
            }
            for i, found in enumerate(group_intervals)
        ]
        if len(judged) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                disparity_intervals = _intervals(disparities(boot[:, judged]), confidence)
                disparity_intervals.pop("equalized_odds_difference", None)
                if len(odds) >= 2:
                    eo_boot = disparities(boot[:, odds])["equalized_odds_difference"]
                    if (eo_interval := interval(eo_boot, confidence)) is not None:
                        disparity_intervals["equalized_odds_difference"] = eo_interval
        if zero_side:
            disparity_intervals.pop("demographic_parity_ratio", None)
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
            unjudged=unjudged[i],
            cells=(int(cells[i][0]), int(cells[i][1]), int(cells[i][2]), int(cells[i][3])),
            roc={} if int(cells[i].sum()) < min_group_size or "roc_auc" in unjudged[i] else dict(rocs[i]),
        )
        for i, label in enumerate(counts.labels)
    )
    return AttributeFairness(
        attribute=counts.attribute,
        intersectional=intersectional,
        gated=gated,
        groups=metrics,
        demographic_parity_difference=float(between["demographic_parity_difference"]),
        demographic_parity_ratio=float("nan") if zero_side else float(between["demographic_parity_ratio"]),
        equalized_odds_difference=eo,
        intervals=disparity_intervals,
    )
