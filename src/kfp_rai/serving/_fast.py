"""Scoring checked instances without building a DataFrame, for the pipeline shape kfp-rai trains.

A fitted ``ColumnTransformer`` spends ~3 ms per call on a one-row frame (pandas indexing, input
checks per encoder), more than the model itself (~1.4 ms for 200 boosted trees); under load that
overhead *is* the latency. One-hot encoding is additive across features, so the encoder's output for
a row equals a base row plus, per categorical feature, a fixed delta chosen by the value. Those
deltas are read from the fitted encoder itself (never re-derived from its parameters), and the result
is checked against the real pipeline on probe rows before it is used: any other estimator shape, or
any difference at all, and the server keeps the scikit-learn path.
Measured in ``benchmarks/SERVING.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

_UNSEEN = "\x00kfp-rai unseen category"  # a string no training category can equal


class FastScorer:
    """``predict_proba`` of a fitted ``Pipeline([ColumnTransformer(OneHotEncoder..., remainder=
    passthrough), classifier])`` from checked instances (dicts; numbers, strings or None)."""

    def __init__(
        self,
        classifier: Any,
        numeric: list[tuple[str, int]],
        base: np.ndarray,
        deltas: dict[str, dict[Any, np.ndarray]],
    ) -> None:
        self._classifier, self._numeric, self._base, self._deltas = classifier, numeric, base, deltas

    @classmethod
    def for_model(cls, model: Any, features: Sequence[str], profile: Mapping[str, Any]) -> FastScorer | None:
        """The fast scorer for ``model``, or None when its shape is not the one this knows or when
        it disagrees with ``model.predict_proba`` on probe rows (then the caller keeps the model)."""
        try:
            scorer = cls._build(model, list(features), profile)
        except Exception:  # noqa: BLE001 - any surprise in an estimator's shape: keep the slow path
            logger.debug("no fast scorer for this model", exc_info=True)
            return None
        if scorer is None:
            return None
        probes = _probe_rows(list(features), profile, scorer._deltas)
        frame = pd.DataFrame(model_columns(probes, list(features), profile), columns=list(features))
        same_input = np.array_equal(scorer.transform(probes), model[:-1].transform(frame), equal_nan=True)
        if not same_input or not np.array_equal(scorer.predict_proba(probes), model.predict_proba(frame)):
            logger.warning("fast scorer disagrees with the model on probe rows: scoring through scikit-learn")
            return None
        return scorer

    @classmethod
    def _build(cls, model: Any, features: list[str], profile: Mapping[str, Any]) -> FastScorer | None:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

        if not isinstance(model, Pipeline) or len(model.steps) != 2:
            return None
        pre, classifier = model.steps[0][1], model.steps[1][1]
        if not isinstance(pre, ColumnTransformer) or not hasattr(classifier, "predict_proba"):
            return None
        if list(getattr(pre, "feature_names_in_", [])) != features:
            return None
        kinds = {f: profile.get(f, {}).get("kind") for f in features}
        categorical: dict[str, list[Any]] = {}  # feature -> every category its encoder knows
        numeric_in_order: list[str] = []
        for _, transformer, columns in pre.transformers_:
            names = [features[c] if isinstance(c, (int, np.integer)) else c for c in columns]
            if transformer == "drop" or not names:
                continue
            # a fitted passthrough is an identity FunctionTransformer (scikit-learn >= 1.5)
            if transformer == "passthrough" or (
                isinstance(transformer, FunctionTransformer) and transformer.func is None
            ):
                if any(kinds[n] != "numeric" for n in names):
                    return None
                numeric_in_order += names
            elif isinstance(transformer, OneHotEncoder) and not transformer.sparse_output:
                if numeric_in_order or any(kinds[n] != "categorical" for n in names):
                    return None  # only encoders first, then passthrough numbers, is handled
                for n, known in zip(names, transformer.categories_, strict=True):
                    categorical[n] = [v for v in known.tolist() if isinstance(v, str)]
            else:
                return None
        if set(categorical) | set(numeric_in_order) != set(features):
            return None
        # A base frame (every categorical at its first seen value) and, per feature and value, the
        # encoder's output with only that feature changed.
        candidates = {f: [*known, _UNSEEN, None] for f, known in categorical.items()}
        baseline = {f: candidates[f][0] if f in candidates else float(profile[f].get("min", 0.0)) for f in features}
        rows: list[dict[str, Any]] = [dict(baseline)]
        for f in categorical:
            rows += [{**baseline, f: v} for v in candidates[f]]
        frame = pd.DataFrame(model_columns(rows, features, profile), columns=features)
        out = np.asarray(pre.transform(frame), dtype=float)
        n_cat = out.shape[1] - len(numeric_in_order)
        base = out[0, :n_cat].copy()
        deltas: dict[str, dict[Any, np.ndarray]] = {}
        at = 1
        for f in categorical:
            deltas[f] = {}
            for v in candidates[f]:
                deltas[f][_key(v)] = np.concatenate([out[at, :n_cat] - base, np.zeros(len(numeric_in_order))])
                at += 1
        numeric = [(f, n_cat + i) for i, f in enumerate(numeric_in_order)]
        return cls(classifier, numeric, np.concatenate([base, np.zeros(len(numeric))]), deltas)

    def transform(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The pipeline's model input for checked instances (what ``ColumnTransformer.transform`` gives)."""
        X = np.tile(self._base, (len(rows), 1))
        for f, table in self._deltas.items():
            unseen = table[_UNSEEN]
            for i, row in enumerate(rows):
                X[i] += table.get(_key(row[f]), unseen)
        for f, column in self._numeric:
            X[:, column] = [np.nan if row[f] is None else float(row[f]) for row in rows]
        return X

    def predict_proba(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.asarray(self._classifier.predict_proba(self.transform(rows)))


def _key(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def model_columns(rows: Sequence[Mapping[str, Any]], features: list[str], profile: Mapping[str, Any]) -> dict[str, Any]:
    """Rows as the columns the served model is given on the scikit-learn path (see ModelService)."""
    columns: dict[str, Any] = {}
    for f in features:
        values = [row[f] for row in rows]
        if profile.get(f, {}).get("kind") == "numeric":
            columns[f] = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
        else:
            columns[f] = np.array([np.nan if v is None else v for v in values], dtype=object)
    return columns


def _probe_rows(features: list[str], profile: Mapping[str, Any], deltas: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows that walk every known value of every categorical feature (plus unseen and missing) and
    spread numbers across and beyond the training range, missing included; deterministic."""
    rng = np.random.default_rng(0)
    longest = max((len(t) for t in deltas.values()), default=1)
    rows = []
    for i in range(max(longest, 64)):
        row: dict[str, Any] = {}
        for f in features:
            spec = profile.get(f, {})
            if f in deltas:
                values = [*deltas[f], "a value no one sent in training"]
                row[f] = values[(i * 7 + len(f)) % len(values)]
            else:
                low, high = float(spec.get("min", 0.0)), float(spec.get("max", 1.0))
                span = high - low or 1.0
                row[f] = None if i % 17 == 5 else float(rng.uniform(low - span / 4, high + span / 4))
        rows.append(row)
    return rows
