"""Production: the model card (the production gate), a versioned registry, and deployment.

The production stage's verdict is the card's (blocked: failed) or, once registered,
:func:`registration_verdict`.
"""

from kfp_rai.production._deploy import DeploymentReport, deploy_model
from kfp_rai.production._model_card import ModelCard, build_model_card, production_gate
from kfp_rai.production._registry import (
    ModelRegistry,
    RegisteredModel,
    check_registrable,
    registration_verdict,
    validate_model_name,
)
from kfp_rai.production._serving_manifest import manifest_yaml

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
    "validate_model_name",
]
