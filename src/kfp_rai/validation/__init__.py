"""Validation: performance and per-group fairness with confidence intervals, and the gate.

The validation stage's verdict is the one :func:`evaluate_model` returns: performance floors and
fairness limits by the policy, plus the explainability gate's verdict when one is passed in.
"""

from kfp_rai.validation._evaluate import evaluate_model
from kfp_rai.validation._gate import judge_validation, validation_findings
from kfp_rai.validation._metrics import AttributeFairness, GroupMetrics, attribute_fairness, overall_metrics
from kfp_rai.validation._report import ValidationReport

__all__ = [
    "AttributeFairness",
    "GroupMetrics",
    "ValidationReport",
    "attribute_fairness",
    "evaluate_model",
    "judge_validation",
    "overall_metrics",
    "validation_findings",
]
