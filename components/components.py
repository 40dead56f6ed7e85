"""Every kfp component of kfp-rai, importable from one place::

from kfp_rai.components import validate_model, check_representativeness
"""

from kfp_rai.discovery.component import check_representativeness, load_dataset, split_dataset
from kfp_rai.explainability.component import explain_model
from kfp_rai.production.component import deploy_model, register_model, write_model_card
from kfp_rai.refresh.component import detect_drift
from kfp_rai.training.component import train_model
from kfp_rai.validation.component import validate_model

__all__ = [
    "check_representativeness",
    "deploy_model",
    "detect_drift",
    "explain_model",
    "load_dataset",
    "register_model",
    "split_dataset",
    "train_model",
    "validate_model",
    "write_model_card",
]
