"""Validation: performance and per-group fairness with confidence intervals, and the gate.

The validation stage's verdict is the one :func:`evaluate_model` returns: performance floors and
fairness limits by the policy, plus the explainability gate's verdict when one is passed in, plus a
reviewer's human-computed figures when a reviewer file is given (:func:`compare_with_reviewer`).
"""

from kfp_rai.validation._evaluate import evaluate_model
from kfp_rai.validation._gate import judge_validation, validation_findings
from kfp_rai.validation._metrics import AttributeFairness, GroupMetrics, attribute_fairness, overall_metrics
from kfp_rai.validation._report import ValidationReport
from kfp_rai.validation._reviewer import ReviewerFile, ReviewerMetric, compare_with_reviewer, reviewer_summary

__all__ = [
    "AttributeFairness",
    "GroupMetrics",
    "ReviewerFile",
    "ReviewerMetric",
    "ValidationReport",
    "attribute_fairness",
    "compare_with_reviewer",
    "evaluate_model",
    "judge_validation",
    "overall_metrics",
    "reviewer_summary",
    "validation_findings",
]
