"""Explainability: SHAP attributions mapped back to the original features."""

from kfp_rai.explainability._shap import ExplanationReport, FeatureImportance, explain_model

__all__ = ["ExplanationReport", "FeatureImportance", "explain_model"]
