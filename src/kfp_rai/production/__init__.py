"""Production: the model card (the production gate), a versioned registry, and deployment.

The production stage's verdict is the card's (blocked: failed) or, once registered,
:func:`registration_verdict`.
"""

from kfp_rai.production._deploy import DeploymentReport, deploy_model
from kfp_rai.production._inference_service import manifest_yaml, render_inference_service, storage_uri
from kfp_rai.production._model_card import ModelCard, build_model_card, production_gate
from kfp_rai.production._registry import (
    ModelRegistry,
    RegisteredModel,
    check_registrable,
    registration_verdict,
    validate_model_name,
)

__all__ = [
    "DeploymentReport",
    "ModelCard",
    "ModelRegistry",
    "RegisteredModel",
    "build_model_card",
    "check_registrable",
    "deploy_model",
    "manifest_yaml",
    "production_gate",
    "registration_verdict",
    "render_inference_service",
    "storage_uri",
    "validate_model_name",
]
