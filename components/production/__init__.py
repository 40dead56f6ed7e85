"""Production: the model card and a versioned model registry."""

from kfp_rai.production._model_card import ModelCard, build_model_card
from kfp_rai.production._registry import ModelRegistry, RegisteredModel, check_registrable, validate_model_name

__all__ = [
    "ModelCard",
    "ModelRegistry",
    "RegisteredModel",
    "build_model_card",
    "check_registrable",
    "validate_model_name",
]
