"""Fairness mitigation with fairlearn, selectable in training: pre-, in- or post-processing.

- ``correlation_remover`` (pre): fairlearn's ``CorrelationRemover`` projects the one-hot sensitive
  columns out of every other (encoded) input before the trees see them; the model needs the
  sensitive columns as inputs to do so.
- ``exponentiated_gradient`` (in): fairlearn's ``ExponentiatedGradient`` with DemographicParity or
  EqualizedOdds over the intersection of the sensitive attributes; the result is a randomized
  classifier (a weighted vote of gradient-boosted models), which needs no sensitive input.
- ``threshold_optimizer`` (post): fairlearn's ``ThresholdOptimizer`` on the unmitigated model's
  scores, one (interpolated) threshold per intersectional group; it needs the sensitive columns as
  inputs — group-specific thresholds are disparate treatment by design, a choice to write down.

What fairlearn fits is kept as plain arrays in the classes below, so skops can store the model with
an exact list of trusted types (fairlearn keeps pandas objects inside, which skops cannot load
safely); tests check each class predicts exactly as the fairlearn object it was built from. Each
mitigated model keeps the unmitigated one (``unmitigated``) so validation can show the trade-off on
the same test data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.groups import intersection_labels
from kfp_rai.errors import DataValidationError

MITIGATIONS = ("none", "correlation_remover", "exponentiated_gradient", "threshold_optimizer")
CONSTRAINTS = ("demographic_parity", "equalized_odds")


class MitigatedClassifier:
    """What every mitigated model shares: its input columns, the unmitigated model and its inputs."""

    method: str = ""
    constraint: str = ""
    features: list[str]
    unmitigated: Any
    unmitigated_features: list[str]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)


def _two_columns(positive: np.ndarray) -> np.ndarray:
    # a weighted vote can sum to 1 + 1e-15: a probability stays in [0, 1]
    positive = np.clip(np.asarray(positive, dtype=float), 0.0, 1.0)
    return np.column_stack([1.0 - positive, positive])


class DecorrelatedClassifier(MitigatedClassifier):
    """Pre-processing: encoder → CorrelationRemover → gradient boosting (a fitted sklearn Pipeline)."""

    method = "correlation_remover"

    def __init__(self, pipeline: Any, features: list[str], unmitigated: Any, unmitigated_features: list[str]):
        self.pipeline = pipeline
        self.features = features
        self.unmitigated = unmitigated
        self.unmitigated_features = unmitigated_features

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline.predict_proba(X[self.features]))


class RandomizedClassifier(MitigatedClassifier):
    """In-processing: ExponentiatedGradient's weighted vote of its predictors' hard predictions
    (fairlearn's ``_pmf_predict``), on the shared encoder's output."""

    method = "exponentiated_gradient"

    def __init__(
        self,
        preprocess: Any,
        predictors: list[Any],
        weights: np.ndarray,
        constraint: str,
        features: list[str],
        unmitigated: Any,
    ):
        self.preprocess = preprocess
        self.predictors = predictors
        self.weights = np.asarray(weights, dtype=float)
        self.constraint = constraint
        self.features = features
        self.unmitigated = unmitigated
        self.unmitigated_features = features

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        encoded = self.preprocess.transform(X[self.features])
        votes = np.column_stack([p.predict(encoded) for p in self.predictors]).astype(float)
        return _two_columns(votes @ self.weights)


class GroupThresholdClassifier(MitigatedClassifier):
    """Post-processing: ThresholdOptimizer's interpolated thresholds per group on the unmitigated
    model's score: P(positive) = (1 - p_ignore) (p0 [s op0 t0] + p1 [s op1 t1]) + p_ignore c."""

    method = "threshold_optimizer"

    def __init__(
        self,
        unmitigated: Any,
        unmitigated_features: list[str],
        sensitive: list[str],
        table: dict[str, np.ndarray],
        groups: list[str],
        constraint: str,
    ):
        self.unmitigated = unmitigated
        self.unmitigated_features = unmitigated_features
        self.sensitive = sensitive
        self.table = table
        self.groups = groups
        self.constraint = constraint
        self.features = [*unmitigated_features, *[s for s in sensitive if s not in unmitigated_features]]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        scores = np.asarray(self.unmitigated.predict_proba(X[self.unmitigated_features])[:, 1], dtype=float)
        index = pd.Index(self.groups).get_indexer(pd.Index(intersection_labels(X, self.sensitive)))
        positive = np.zeros(len(scores))
        known = index >= 0  # a group unseen in training gets no threshold: it is never predicted positive
        t = {k: v[index[known]] for k, v in self.table.items()}
        s = scores[known]

        def passes(greater: np.ndarray, threshold: np.ndarray) -> np.ndarray:
            return np.where(greater > 0, s > threshold, s < threshold)

        mixed = t["p0"] * passes(t["greater0"], t["threshold0"]) + t["p1"] * passes(t["greater1"], t["threshold1"])
        positive[known] = t["p_ignore"] * t["constant"] + (1 - t["p_ignore"]) * mixed
        return _two_columns(positive)


def _constraint(name: str) -> Any:
    from fairlearn.reductions import DemographicParity, EqualizedOdds

    return DemographicParity() if name == "demographic_parity" else EqualizedOdds()


def _source_column(name: str, inputs: Sequence[str]) -> str:
    """The input column an encoder output (``cat__sex_Female``, ``remainder__age``) comes from: the
    longest matching name, so ``sex_flag`` is never read as a value of ``sex``."""
    _, _, rest = name.partition("__")
    matches = [c for c in inputs if rest == c or rest.startswith(f"{c}_")]
    return max(matches, key=len) if matches else ""


def correlation_remover(
    df: pd.DataFrame,
    y: np.ndarray,
    *,
    features: Sequence[str],
    sensitive: Sequence[str],
    estimator: Any,
    unmitigated: Any,
) -> DecorrelatedClassifier:
    from fairlearn.preprocessing import CorrelationRemover
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    inputs = [*features, *[s for s in sensitive if s not in features]]
    encoder = clone(estimator[0])
    encoder.set_params(cat__sparse_output=False)
    categorical = list(df[inputs].select_dtypes(exclude="number").columns)
    encoder.transformers = [("cat", encoder.transformers[0][1], categorical)]
    names = list(encoder.fit(df[inputs]).get_feature_names_out())
    ids = [i for i, n in enumerate(names) if _source_column(n, inputs) in sensitive]
    pipeline = Pipeline(
        [
            ("preprocess", encoder),
            ("decorrelate", CorrelationRemover(sensitive_feature_ids=ids)),
            ("classifier", clone(estimator[-1])),
        ]
    )
    pipeline.fit(df[inputs], y)
    return DecorrelatedClassifier(pipeline, inputs, unmitigated, list(features))


def exponentiated_gradient(
    df: pd.DataFrame,
    y: np.ndarray,
    *,
    features: Sequence[str],
    sensitive: Sequence[str],
    estimator: Any,
    unmitigated: Any,
    constraint: str,
    max_iter: int,
    seed: int,
) -> RandomizedClassifier:
    from fairlearn.reductions import ExponentiatedGradient
    from sklearn.base import clone

    preprocess = clone(estimator[0]).fit(df[list(features)])
    encoded = preprocess.transform(df[list(features)])
    reduction = ExponentiatedGradient(clone(estimator[-1]), constraints=_constraint(constraint), max_iter=max_iter)
    np.random.seed(seed)  # noqa: NPY002 - fairlearn draws from the global state
    reduction.fit(encoded, y, sensitive_features=intersection_labels(df, sensitive).to_numpy())
    return from_exponentiated_gradient(reduction, preprocess, constraint, list(features), unmitigated)


def from_exponentiated_gradient(
    reduction: Any, preprocess: Any, constraint: str, features: list[str], unmitigated: Any
) -> RandomizedClassifier:
    """A fitted ExponentiatedGradient as plain arrays: its predictors with a weight > 0."""
    used = [i for i in reduction.weights_.index if reduction.weights_[i] > 0]
    return RandomizedClassifier(
        preprocess,
        [reduction.predictors_[i] for i in used],
        np.array([reduction.weights_[i] for i in used]),
        constraint,
        features,
        unmitigated,
    )


def threshold_optimizer(
    df: pd.DataFrame,
    y: np.ndarray,
    *,
    features: Sequence[str],
    sensitive: Sequence[str],
    unmitigated: Any,
    constraint: str,
) -> GroupThresholdClassifier:
    from fairlearn.postprocessing import ThresholdOptimizer

    optimizer = ThresholdOptimizer(
        estimator=unmitigated, constraints=constraint, prefit=True, predict_method="predict_proba"
    )
    groups = intersection_labels(df, sensitive)
    one_label = sorted(str(g) for g, n in pd.Series(y).groupby(groups.to_numpy()).nunique().items() if n < 2)
    if one_label:
        raise DataValidationError(
            f"threshold_optimizer needs both labels in every group of {' × '.join(sensitive)}, but {one_label} "
            "hold one: no threshold can be learned there. Use more data, fewer sensitive attributes, or another "
            "mitigation"
        )
    optimizer.fit(df[list(features)], y, sensitive_features=groups.to_numpy())
    return from_threshold_optimizer(optimizer, list(features), list(sensitive), constraint)


def from_threshold_optimizer(
    optimizer: Any, features: list[str], sensitive: list[str], constraint: str
) -> GroupThresholdClassifier:
    """A fitted ThresholdOptimizer (fitted with :func:`intersection_labels` of ``sensitive`` as
    its groups) as plain arrays: per group, its two thresholds, their weights and the constant."""
    interpolation = optimizer.interpolated_thresholder_.interpolation_dict
    names = [str(g) for g in interpolation]
    rows = [interpolation[g] for g in interpolation]
    table = {
        "p0": np.array([r.p0 for r in rows], dtype=float),
        "p1": np.array([r.p1 for r in rows], dtype=float),
        "threshold0": np.array([r.operation0.threshold for r in rows], dtype=float),
        "threshold1": np.array([r.operation1.threshold for r in rows], dtype=float),
        "greater0": np.array([r.operation0.operator == ">" for r in rows], dtype=np.int64),
        "greater1": np.array([r.operation1.operator == ">" for r in rows], dtype=np.int64),
        "p_ignore": np.array([r.get("p_ignore", 0.0) for r in rows], dtype=float),
        "constant": np.array([r.get("prediction_constant", 0.0) for r in rows], dtype=float),
    }
    return GroupThresholdClassifier(optimizer.estimator, features, sensitive, table, names, constraint)


def mitigate(
    unmitigated: Any,
    df: pd.DataFrame,
    y: np.ndarray,
    *,
    features: Sequence[str],
    sensitive_features: Sequence[str],
    method: str,
    constraint: str,
    max_iter: int,
    seed: int,
) -> MitigatedClassifier:
    """The mitigated model for ``method`` (one of :data:`MITIGATIONS` but ``none``), fitted on
    ``df``, keeping ``unmitigated`` (fitted on the same rows) for the trade-off."""
    if method == "correlation_remover":
        model: MitigatedClassifier = correlation_remover(
            df, y, features=features, sensitive=sensitive_features, estimator=unmitigated, unmitigated=unmitigated
        )
        model.constraint = "linear correlation"
        return model
    if method == "exponentiated_gradient":
        return exponentiated_gradient(
            df, y, features=features, sensitive=sensitive_features, estimator=unmitigated, unmitigated=unmitigated,
            constraint=constraint, max_iter=max_iter, seed=seed,
        )  # fmt: skip
    if method == "threshold_optimizer":
        return threshold_optimizer(
            df, y, features=features, sensitive=sensitive_features, unmitigated=unmitigated, constraint=constraint
        )
    raise DataValidationError(f"unknown mitigation {method!r}: one of {', '.join(MITIGATIONS)}")
