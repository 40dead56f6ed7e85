"""Performance and fairness of a binary classifier, per group, with bootstrap intervals.

Metric definitions are fairlearn's: demographic parity difference/ratio over selection rate,
equalized-odds difference as the larger of the true- and false-positive-rate gaps.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score, roc_curve

from kfp_rai._report import Report, Section, Table
from kfp_rai.discovery import validate_dataset
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import ValidationPolicy
from kfp_rai.training import labels
from kfp_rai.validation._bootstrap import (
    bootstrap_cell_counts,
    cell_counts,
    disparities,
    interval,
    rates,
)

logger = logging.getLogger(__name__)

INTERSECTION_SEP = " × "
_ROC_POINTS = 101


def _safe(metric: Callable[..., float]) -> Callable[..., float]:
    """A metric that returns NaN where it is undefined (e.g. ROC AUC of a one-class group)."""

    def wrapped(y_true: Any, y_pred: Any) -> float:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = float(metric(y_true, y_pred))
        except ValueError:
            return float("nan")
        return value

    wrapped.__name__ = getattr(metric, "__name__", "metric")
    return wrapped


# Metrics over hard predictions; ROC AUC is computed separately on scores.
_LABEL_METRICS: dict[str, Callable[..., float]] = {
    "count": count,
    "accuracy": _safe(accuracy_score),
    "selection_rate": _safe(selection_rate),
    "true_positive_rate": _safe(true_positive_rate),
    "false_positive_rate": _safe(false_positive_rate),
}


@dataclass(frozen=True)
class GroupMetrics:
    group: str
    count: int
    accuracy: float
    selection_rate: float
    true_positive_rate: float
    false_positive_rate: float
    roc_auc: float
    selection_rate_ci: tuple[float, float] | None


@dataclass(frozen=True)
class AttributeFairness:
    """Per-group metrics of one sensitive attribute (or an intersection) and its disparities."""

    attribute: str
    intersectional: bool
    groups: tuple[GroupMetrics, ...]
    demographic_parity_difference: float
    demographic_parity_ratio: float
    equalized_odds_difference: float
    demographic_parity_difference_ci: tuple[float, float] | None
    equalized_odds_difference_ci: tuple[float, float] | None
    gated: bool


@dataclass(frozen=True)
class ValidationReport(Report):
    """Overall performance, fairness by group, and the validation gate's verdict."""

    kind = "validation_report"
    title = "Model validation"

    passed: bool
    reason: str
    violations: tuple[str, ...]
    rows: int
    threshold: float
    overall: dict[str, float]
    overall_ci: dict[str, tuple[float, float]]
    fairness: tuple[AttributeFairness, ...]
    confusion_matrix: tuple[tuple[int, int], tuple[int, int]]
    roc_curve: dict[str, list[float]]
    policy: dict[str, Any]
    bootstrap_samples: int

    def disparities(self) -> dict[str, dict[str, float]]:
        """attribute -> disparity name -> value (the numbers the gate judged)."""
        return {
            f.attribute: {
                "demographic_parity_difference": f.demographic_parity_difference,
                "demographic_parity_ratio": f.demographic_parity_ratio,
                "equalized_odds_difference": f.equalized_odds_difference,
            }
            for f in self.fairness
        }

    def sections(self) -> list[Section]:
        def ci(pair: tuple[float, float] | None) -> str:
            return "—" if pair is None else f"{pair[0]:.3f}–{pair[1]:.3f}"

        overall = Table(
            ("metric", "value", f"{self.policy['confidence_level']:.0%} CI"),
            tuple((k, v, ci(self.overall_ci.get(k))) for k, v in self.overall.items()),
        )
        disp = Table(
            (
                "attribute",
                "gated",
                "DP difference",
                "DP difference CI",
                "DP ratio",
                "EO difference",
                "EO difference CI",
            ),
            tuple(
                (
                    f.attribute,
                    f.gated,
                    f.demographic_parity_difference,
                    ci(f.demographic_parity_difference_ci),
                    f.demographic_parity_ratio,
                    f.equalized_odds_difference,
                    ci(f.equalized_odds_difference_ci),
                )
                for f in self.fairness
            ),
        )
        p = self.policy
        rules = (
            f"accuracy >= {p['min_accuracy']}, ROC AUC >= {p['min_roc_auc']}, "
            f"DP difference <= {p['max_demographic_parity_difference']}, DP ratio >= "
            f"{p['min_demographic_parity_ratio']}, EO difference <= {p['max_equalized_odds_difference']}, "
            f"every group >= {p['min_group_size']} rows. Intersections are reported, not gated."
        )
        sections = [
            Section(
                "Policy",
                (
                    rules,
                    f"{self.rows} test rows; decision threshold {self.threshold}; "
                    f"{self.bootstrap_samples} bootstrap resamples.",
                ),
            ),
            Section("Overall performance", (overall,)),
            Section("Disparities", (disp,)),
        ]
        for f in self.fairness:
            sections.append(
                Section(
                    f"By {f.attribute}",
                    (
                        Table(
                            (
                                "group",
                                "rows",
                                "accuracy",
                                "selection rate",
                                "selection rate CI",
                                "TPR",
                                "FPR",
                                "ROC AUC",
                            ),
                            tuple(
                                (
                                    g.group,
                                    g.count,
                                    g.accuracy,
                                    g.selection_rate,
                                    ci(g.selection_rate_ci),
                                    g.true_positive_rate,
                                    g.false_positive_rate,
                                    g.roc_auc,
                                )
                                for g in f.groups
                            ),
                        ),
                    ),
                )
            )
        sections.append(Section("Violations", ("\n".join(f"- {v}" for v in self.violations) or "None.",)))
        return sections


def _group_name(key: Any) -> str:
    return INTERSECTION_SEP.join(str(k) for k in key) if isinstance(key, tuple) else str(key)


def _attribute_fairness(
    name: str,
    sensitive: pd.Series | pd.DataFrame,
    y: np.ndarray,
    y_pred: np.ndarray,
    scores: np.ndarray,
    *,
    policy: ValidationPolicy,
    seed: int,
    gated: bool,
) -> AttributeFairness:
    mf = MetricFrame(metrics=_LABEL_METRICS, y_true=y, y_pred=y_pred, sensitive_features=sensitive)
    by_group = mf.by_group.copy()
    auc = MetricFrame(metrics=_safe(roc_auc_score), y_true=y, y_pred=scores, sensitive_features=sensitive).by_group
    diff = mf.difference(method="between_groups")
    ratio = mf.ratio(method="between_groups")
    # Group codes in by_group's order, so count-based results line up with fairlearn's rows.
    keys = pd.MultiIndex.from_frame(sensitive) if isinstance(sensitive, pd.DataFrame) else pd.Index(sensitive)
    codes = by_group.index.get_indexer(keys)
    # fairlearn calls a rate with an empty denominator 0 (e.g. TPR of a group without positives);
    # the gate must not judge on that, so such rates become NaN and fail closed.
    defined = rates(cell_counts(codes, y, y_pred, len(by_group)))
    for metric in ("true_positive_rate", "false_positive_rate", "selection_rate", "accuracy"):
        by_group[metric] = by_group[metric].where(~np.isnan(defined[metric]), np.nan)
    rates_defined = not by_group[["true_positive_rate", "false_positive_rate"]].isna().to_numpy().any()
    eo = max(float(diff["true_positive_rate"]), float(diff["false_positive_rate"])) if rates_defined else float("nan")
    dp_ci = eo_ci = None
    sel_ci: list[tuple[float, float] | None] = [None] * len(by_group)
    if policy.bootstrap_samples:
        boot = bootstrap_cell_counts(codes, y, y_pred, len(by_group), n_boot=policy.bootstrap_samples, seed=seed)
        sel = rates(boot)["selection_rate"]
        sel_ci = [interval(sel[:, i], policy.confidence_level) for i in range(len(by_group))]
        disp = disparities(boot)
        dp_ci = interval(disp["demographic_parity_difference"], policy.confidence_level)
        eo_ci = interval(disp["equalized_odds_difference"], policy.confidence_level)
    groups = [
        GroupMetrics(
            group=_group_name(key),
            count=int(row["count"]),
            accuracy=float(row["accuracy"]),
            selection_rate=float(row["selection_rate"]),
            true_positive_rate=float(row["true_positive_rate"]),
            false_positive_rate=float(row["false_positive_rate"]),
            roc_auc=float(auc.loc[key]),
            selection_rate_ci=sel_ci[i],
        )
        for i, (key, row) in enumerate(by_group.iterrows())
    ]
    return AttributeFairness(
        attribute=name,
        intersectional=isinstance(sensitive, pd.DataFrame),
        groups=tuple(groups),
        demographic_parity_difference=float(diff["selection_rate"]),
        demographic_parity_ratio=float(ratio["selection_rate"]),
        equalized_odds_difference=eo,
        demographic_parity_difference_ci=dp_ci,
        equalized_odds_difference_ci=eo_ci,
        gated=gated,
    )


def _roc_points(y: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr, thr = roc_curve(y, scores)
    thr = np.where(np.isfinite(thr), thr, 1.0)
    idx = np.unique(np.linspace(0, len(fpr) - 1, min(_ROC_POINTS, len(fpr))).round().astype(int))
    return {
        "fpr": [round(float(v), 6) for v in fpr[idx]],
        "tpr": [round(float(v), 6) for v in tpr[idx]],
        "threshold": [round(float(v), 6) for v in thr[idx]],
    }


def _check(value: float, ok: bool, message: str, violations: list[str]) -> None:
    if math.isnan(value):
        violations.append(message.split(":")[0] + ": cannot be computed (fails closed)")
    elif not ok:
        violations.append(message)


def evaluate_model(
    model: Any,
    df: pd.DataFrame,
    *,
    features: Sequence[str],
    target: str,
    positive_label: str,
    sensitive_features: Sequence[str],
    policy: ValidationPolicy | None = None,
    seed: int = 0,
) -> ValidationReport:
    """Measure ``model`` on the held-out ``df`` and judge it against ``policy``.

    Fails closed: a group smaller than ``policy.min_group_size``, or a metric that cannot be
    computed, is a violation.

    Parameters
    ----------
    model : estimator with ``predict_proba``
    df : DataFrame
        Held-out data holding the features, the target and the sensitive features.
    features : list of str
        The model's input columns (from its training metadata).

    Returns
    -------
    ValidationReport
    """
    policy = policy or ValidationPolicy()
    validate_dataset(df, target=target, positive_label=positive_label, sensitive_features=sensitive_features)
    missing = [c for c in features if c not in df.columns]
    if missing:
        raise DataValidationError(f"the test data lacks the model's feature columns {missing}")
    y = labels(df, target=target, positive_label=positive_label)
    scores = model.predict_proba(df[list(features)])[:, 1]
    y_pred = (scores >= policy.threshold).astype(np.int64)
    zeros = np.zeros(len(y), dtype=np.int64)
    overall_values = {k: float(v[0]) for k, v in rates(cell_counts(zeros, y, y_pred, 1)).items()}
    overall_values["roc_auc"] = _safe(roc_auc_score)(y, scores)
    overall_ci: dict[str, tuple[float, float]] = {}
    if policy.bootstrap_samples:
        boot = rates(bootstrap_cell_counts(zeros, y, y_pred, 1, n_boot=policy.bootstrap_samples, seed=seed))
        overall_ci = {k: ci for k, v in boot.items() if (ci := interval(v[:, 0], policy.confidence_level))}
    sens = df[list(sensitive_features)].astype("string").fillna("<missing>")
    fairness = [
        _attribute_fairness(a, sens[a], y, y_pred, scores, policy=policy, seed=seed, gated=True)
        for a in sensitive_features
    ]
    if len(sensitive_features) > 1:
        fairness.append(
            _attribute_fairness(
                INTERSECTION_SEP.join(sensitive_features),
                sens,
                y,
                y_pred,
                scores,
                policy=policy,
                seed=seed,
                gated=False,
            )
        )
    violations: list[str] = []
    acc, auc = overall_values["accuracy"], overall_values["roc_auc"]
    _check(acc, acc >= policy.min_accuracy, f"accuracy: {acc:.3f} < {policy.min_accuracy}", violations)
    _check(auc, auc >= policy.min_roc_auc, f"ROC AUC: {auc:.3f} < {policy.min_roc_auc}", violations)
    for f in fairness:
        if not f.gated:
            continue
        for g in f.groups:
            if g.count < policy.min_group_size:
                violations.append(
                    f"{f.attribute}={g.group}: {g.count} test rows < minimum {policy.min_group_size} (unmeasurable)"
                )
        dpd, dpr, eod = f.demographic_parity_difference, f.demographic_parity_ratio, f.equalized_odds_difference
        _check(
            dpd,
            dpd <= policy.max_demographic_parity_difference,
            f"{f.attribute} demographic parity difference: {dpd:.3f} > {policy.max_demographic_parity_difference}",
            violations,
        )
        _check(
            dpr,
            dpr >= policy.min_demographic_parity_ratio,
            f"{f.attribute} demographic parity ratio: {dpr:.3f} < {policy.min_demographic_parity_ratio}",
            violations,
        )
        _check(
            eod,
            eod <= policy.max_equalized_odds_difference,
            f"{f.attribute} equalized odds difference: {eod:.3f} > {policy.max_equalized_odds_difference}",
            violations,
        )
    if violations:
        head = f"{len(violations)} violation(s): " + "; ".join(violations[:3]) + (" ..." if len(violations) > 3 else "")
        passed = not policy.enforce
        reason = head if policy.enforce else "warning (policy does not enforce): " + head
    else:
        passed = True
        reason = f"accuracy {acc:.3f}, ROC AUC {auc:.3f}; all fairness limits met"
    tn, fp, fn, tp = confusion_matrix(y, y_pred, labels=[0, 1]).ravel()
    return ValidationReport(
        passed=passed,
        reason=reason,
        violations=tuple(violations),
        rows=int(len(df)),
        threshold=policy.threshold,
        overall=overall_values,
        overall_ci=overall_ci,
        fairness=tuple(fairness),
        confusion_matrix=((int(tn), int(fp)), (int(fn), int(tp))),
        roc_curve=_roc_points(y, scores),
        policy=asdict(policy),
        bootstrap_samples=policy.bootstrap_samples,
    )
