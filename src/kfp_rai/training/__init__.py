"""Training: a seeded sklearn pipeline, its summary and the training stage's verdict."""

from kfp_rai.training._train import (
    TrainingSummary,
    build_estimator,
    feature_columns,
    judge_training,
    labels,
    train_model,
)

__all__ = ["TrainingSummary", "build_estimator", "feature_columns", "judge_training", "labels", "train_model"]
