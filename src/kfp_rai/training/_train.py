"""Train a binary classifier: one-hot encoding + HistGradientBoostingClassifier, seeded."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.discovery import validate_dataset
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import TrainingPolicy

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


@dataclass(frozen=True)
class TrainingSummary:
    """What was trained, on what, with which settings."""

    framework: str
    estimator: str
    features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    target: str
    positive_label: str
    rows: int
    positive_rate: float
    seed: int
    seconds: float
    train_accuracy: float
    predicted_positive_rate: float
    feature_profile: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped_proxies: tuple[str, ...] = ()
    mitigation: str = "none"
    mitigation_constraint: str = ""
    # the data's other label when it has exactly one ("<=50K" beside ">50K"); else "" (shown as "not X")
    negative_label: str = ""


_MAX_PROFILE_CATEGORIES = 200


def feature_profile(X: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """What the training inputs looked like: numeric range or known categories per feature.

    Serving compares requests with it to flag unusual inputs; only ranges and category labels are
    kept (no rows), and categorical columns with very many values keep none.
    """
    profile: dict[str, dict[str, Any]] = {}
    for col in X.columns:
        if pd.api.types.is_numeric_dtype(X[col]):
            profile[col] = {"kind": "numeric", "min": float(X[col].min()), "max": float(X[col].max())}
        else:
            values = sorted(str(v) for v in X[col].dropna().unique())
            profile[col] = {"kind": "categorical", "values": values if len(values) <= _MAX_PROFILE_CATEGORIES else None}
    return profile


def feature_columns(
    df: pd.DataFrame,
    *,
    target: str,
    sensitive_features: Sequence[str],
    policy: TrainingPolicy,
    identifier_columns: Sequence[str] = (),
) -> list[str]:
    """The model's input columns: everything but the target, excluded columns, identifier
    columns (pseudonymized IDs are never features) and, unless the policy allows them, the
    sensitive features."""
    drop = {target, *policy.exclude_features, *identifier_columns}
    if not policy.use_sensitive_features:
        drop |= set(sensitive_features)
    features = [c for c in df.columns if c not in drop]
    empty = [c for c in features if df[c].isna().all()]
    if empty:
        raise DataValidationError(
            f"feature columns {empty} hold only missing values: drop them, or list them in the policy's "
            "training.exclude_features"
        )
    if not features:
        raise DataValidationError(
            "no feature columns are left after removing the target, the sensitive features (unless the policy "
            "allows them), excluded and identifier columns: the model would have no inputs"
        )
    return features


def labels(df: pd.DataFrame, *, target: str, positive_label: str) -> np.ndarray:
    """1 where the target equals the positive label, else 0."""
    return np.asarray((df[target].astype(str) == str(positive_label)).to_numpy(dtype=np.int64))


def build_estimator(X: pd.DataFrame, *, policy: TrainingPolicy, seed: int) -> Pipeline:
    """One-hot encoding of the text columns, then HistGradientBoostingClassifier, seeded."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    categorical = list(X.select_dtypes(exclude="number").columns)
    pre = ColumnTransformer(
        [
            (
                "cat",
                OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=10, sparse_output=False),
                categorical,
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=True,
    )
    clf = HistGradientBoostingClassifier(
        max_iter=policy.max_iter,
        learning_rate=policy.learning_rate,
        max_leaf_nodes=policy.max_leaf_nodes,
        random_state=seed,
    )
    return Pipeline([("preprocess", pre), ("classifier", clf)])


def train_model(
    df: pd.DataFrame,
    *,
    target: str,
    positive_label: str,
    sensitive_features: Sequence[str],
    policy: TrainingPolicy | None = None,
    seed: int = 0,
    identifier_columns: Sequence[str] = (),
    drop_proxies: Sequence[str] = (),
) -> tuple[Any, TrainingSummary]:
    """Fit the default model on ``df``.

    ``identifier_columns`` (e.g. the columns pseudonymized at load) are never model inputs, nor
    are ``drop_proxies`` (features standing in for a sensitive attribute, when the policy's
    ``proxies.drop_from_training`` says so; they stay in the data for evaluation).

    Returns
    -------
    model : sklearn.pipeline.Pipeline
        ``predict_proba(X)[:, 1]`` is the probability of ``positive_label``.
    summary : TrainingSummary
    """
    policy = policy or TrainingPolicy()
    validate_dataset(df, target=target, positive_label=positive_label, sensitive_features=sensitive_features)
    features = feature_columns(
        df, target=target, sensitive_features=sensitive_features, policy=policy, identifier_columns=identifier_columns
    )
    dropped = tuple(f for f in features if f in set(drop_proxies))
    features = [f for f in features if f not in dropped]
    if not features:
        raise DataValidationError("no feature is left once the proxies are dropped: nothing to train on")
    X = df[features]
    y = labels(df, target=target, positive_label=positive_label)
    model: Any = build_estimator(X, policy=policy, seed=seed)
    start = time.perf_counter()
    model.fit(X, y)
    if policy.mitigation != "none":
        from kfp_rai.training._mitigation import mitigate

        model = mitigate(
            model,
            df,
            y,
            features=features,
            sensitive_features=sensitive_features,
            method=policy.mitigation,
            constraint=policy.mitigation_constraint,
            max_iter=policy.mitigation_max_iter,
            seed=seed,
        )
        features = list(model.features)
        X = df[features]
    seconds = time.perf_counter() - start
    categorical = tuple(X.select_dtypes(exclude="number").columns)
    predicted = model.predict(X)
    return model, TrainingSummary(
        framework="sklearn",
        estimator="HistGradientBoostingClassifier",
        features=tuple(features),
        categorical_features=categorical,
        target=target,
        positive_label=str(positive_label),
        rows=int(len(df)),
        positive_rate=float(y.mean()),
        seed=seed,
        seconds=round(seconds, 3),
        train_accuracy=float((predicted == y).mean()),
        predicted_positive_rate=float(predicted.mean()),
        feature_profile=feature_profile(X),
        dropped_proxies=dropped,
        mitigation=policy.mitigation,
        mitigation_constraint=getattr(model, "constraint", ""),
        negative_label=negative_label(df[target], positive_label),
    )


def negative_label(target: pd.Series, positive_label: Any) -> str:
    """The label of the other class as the data writes it, when it has exactly one other value."""
    others = {str(v) for v in target.dropna().unique()} - {str(positive_label)}
    return others.pop() if len(others) == 1 else ""


def negative_label_of(summary: Any) -> str:
    """What a negative prediction is called: the data's own other label, else "not <positive>"."""
    get = summary.get if isinstance(summary, dict) else lambda k, d=None: getattr(summary, k, d)
    return str(get("negative_label") or f"not {get('positive_label')}")


def judge_training(summary: TrainingSummary) -> Verdict:
    """The training stage's verdict: a model that predicts one class for every training row has
    learned nothing a later gate could judge, so training fails; any other fitted model passes."""
    rate = summary.predicted_positive_rate
    degenerate = rate in (0.0, 1.0)
    only = summary.positive_label if rate == 1.0 else negative_label_of(summary)
    finding = Finding(
        "training.predicts_both_classes",
        "model",
        GateStatus.FAILED if degenerate else GateStatus.PASSED,
        f"the model predicts {only!r} for every one of {summary.rows} training rows"
        if degenerate
        else f"the model predicts {summary.positive_label!r} for {rate:.1%} of training rows",
        observed=rate,
    )
    return Verdict.judge(
        [finding],
        summary=f"{summary.estimator} trained on {summary.rows} rows ({len(summary.features)} features, "
        f"training accuracy {summary.train_accuracy:.3f}, seed {summary.seed})",
    )
