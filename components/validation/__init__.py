"""Validation: performance and per-group fairness with confidence intervals, and the gate."""

from kfp_rai.validation._fairness import (
    AttributeFairness,
    GroupMetrics,
    ValidationReport,
    evaluate_model,
)

__all__ = ["AttributeFairness", "GroupMetrics", "ValidationReport", "evaluate_model"]
