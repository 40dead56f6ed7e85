"""Training: a seeded sklearn pipeline, and model persistence with skops and sha256 checks."""

from kfp_rai.training._persistence import load_model, save_model
from kfp_rai.training._train import TrainingSummary, feature_columns, labels, train_model

__all__ = ["TrainingSummary", "feature_columns", "labels", "load_model", "save_model", "train_model"]
