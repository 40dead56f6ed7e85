"""evaluate_model: score held-out data, measure per group and intersection, judge by the policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.groups import group_labels, intersection_labels, intersection_name
from kfp_rai.core.verdict import Verdict
from kfp_rai.discovery import validate_dataset
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import ValidationPolicy
from kfp_rai.training import labels
from kfp_rai.validation._gate import judge_validation
from kfp_rai.validation._metrics import attribute_fairness, overall_metrics
from kfp_rai.validation._report import ValidationReport
from kfp_rai.validation._roc import roc_points


def _tradeoff_row(name: str, overall: Any, fairness: Sequence[Any], verdict: Verdict) -> dict[str, Any]:
    """One model's side of the mitigation trade-off: performance, disparities, its verdict."""
    row: dict[str, Any] = {"model": name, "accuracy": overall["accuracy"], "roc_auc": overall["roc_auc"]}
    for f in fairness:
        row.update({f"{f.attribute} {k}": v for k, v in f.disparities().items()})
    row["status"] = verdict.status.value
    return row


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
    explanation: Verdict | None = None,
) -> ValidationReport:
    """Measure ``model`` on the held-out ``df`` and judge it against ``policy``.

    Parameters
    ----------
    model : estimator with ``predict_proba``
    df : DataFrame
        Held-out data holding the features, the target and the sensitive features.
    features : list of str
        The model's input columns (from its training metadata).
    explanation : Verdict, optional
        The explainability gate's verdict; when given it is part of this stage's verdict.

    Returns
    -------
    ValidationReport
        Its verdict fails closed on a group below ``policy.min_group_size`` or a metric that cannot
        be computed.
    """
    policy = policy or ValidationPolicy()
    validate_dataset(df, target=target, positive_label=positive_label, sensitive_features=sensitive_features)
    missing = [c for c in features if c not in df.columns]
    if missing:
        raise DataValidationError(f"the test data lacks the model's feature columns {missing}")
    y = labels(df, target=target, positive_label=positive_label)
    scores = model.predict_proba(df[list(features)])[:, 1]
    y_pred = (scores >= policy.threshold).astype(np.int64)
    n_boot, confidence = policy.bootstrap_samples, policy.confidence_level
    overall, overall_intervals = overall_metrics(y, y_pred, scores, n_boot=n_boot, confidence=confidence, seed=seed)
    fairness = [
        attribute_fairness(
            a,
            group_labels(df[a]),
            y,
            y_pred,
            scores,
            gated=True,
            intersectional=False,
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
            min_group_size=policy.min_group_size,
            min_positives=policy.min_positives,
            min_negatives=policy.min_negatives,
        )
        for a in sensitive_features
    ]
    if len(sensitive_features) > 1:
        fairness.append(
            attribute_fairness(
                intersection_name(sensitive_features),
                intersection_labels(df, sensitive_features),
                y,
                y_pred,
                scores,
                gated=policy.gate_intersections,
                intersectional=True,
                n_boot=n_boot,
                confidence=confidence,
                seed=seed,
                min_group_size=policy.min_group_size,
                min_positives=policy.min_positives,
                min_negatives=policy.min_negatives,
            )
        )
    tn, fp, fn, tp = np.bincount(y * 2 + y_pred, minlength=4).tolist()
    tradeoff = None
    if getattr(model, "unmitigated", None) is not None:
        baseline = evaluate_model(
            model.unmitigated,
            df,
            features=model.unmitigated_features,
            target=target,
            positive_label=positive_label,
            sensitive_features=sensitive_features,
            policy=policy,  # the same bootstrap: under judge_on interval its verdict needs the intervals
            seed=seed,
        )
        tradeoff = {
            "method": model.method,
            "constraint": model.constraint,
            "rows": [
                _tradeoff_row("unmitigated", baseline.overall, baseline.fairness, baseline.verdict),
                _tradeoff_row(
                    f"{model.method} ({model.constraint})",
                    overall,
                    fairness,
                    judge_validation(overall, overall_intervals, fairness, policy),
                ),
            ],
        }
    return ValidationReport(
        tradeoff=tradeoff,
        verdict=judge_validation(overall, overall_intervals, fairness, policy, explanation),
        rows=int(len(df)),
        threshold=policy.threshold,
        overall=overall,
        overall_intervals=overall_intervals,
        fairness=tuple(fairness),
        confusion_matrix=((tn, fp), (fn, tp)),
        roc_curve=roc_points(y, scores) or {"fpr": [], "tpr": [], "threshold": []},  # one class: no curve
        policy=policy.to_dict(),
    )
