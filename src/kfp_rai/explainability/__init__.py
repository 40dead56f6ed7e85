"""Explainability: SHAP attributions mapped back to the original features."""

from kfp_rai.explainability._shap import (
    ExplanationReport,
    FeatureImportance,
    explain_model,
    top_contributions,
    tree_explainer,
)

__all__ = ["ExplanationReport", "FeatureImportance", "explain_model", "top_contributions", "tree_explainer"]
