"""Batch scoring (`kfp-rai predict`): a verified registry version scores a data file with the same
input checks as the server, and writes scores and labels, never a raw identifier.

What a served request goes through, applied to a whole file: every feature present; a numeric
feature holds numbers (finite, within float range), a categorical one text; missing values are
scored as missing (as the model was trained); values outside the training range or categories it
never saw are scored and flagged (``alerts``, naming the feature, never the value). Columns a user
asks to keep (the true label and the sensitive attributes, for ``kfp-rai fairness``) are screened
for personal data first; an identifier column becomes its HMAC pseudonym (the same one the
pipeline's data and the audit log carry) and is refused without the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.errors import DataValidationError, InvalidParameterError

OUTPUT_COLUMNS = ("probability", "label", "alerts")


@dataclass(frozen=True)
class Scored:
    """The scored table and what a person reads about it in one line."""

    table: pd.DataFrame
    rows: int
    positives: int
    flagged: int
    positive_label: str


def _check_features(df: pd.DataFrame, features: Sequence[str], profile: dict[str, Any]) -> None:
    """The serving checks, column by column; the problem is named by type, never by value."""
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise DataValidationError(f"the data lacks the model's features {missing}")
    for f in features:
        kind, column = profile.get(f, {}).get("kind"), df[f]
        if kind == "numeric":
            if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                raise DataValidationError(f"feature {f!r} must hold numbers, but holds {column.dtype} values")
            if not np.isfinite(column.dropna().to_numpy(dtype=float)).all():
                raise DataValidationError(f"feature {f!r} holds infinite values: only finite numbers are scored")
        elif kind == "categorical":
            present = column.dropna()
            if len(present) and not present.map(lambda v: isinstance(v, str)).all():
                raise DataValidationError(f"feature {f!r} must hold text (its categories), but holds other values")


def _alerts(df: pd.DataFrame, features: Sequence[str], profile: dict[str, Any]) -> list[str]:
    """Per row, what the server would flag: out of the training range, or a category never seen."""
    flags: list[list[str]] = [[] for _ in range(len(df))]
    for f in features:
        spec, column = profile.get(f, {}), df[f]
        if spec.get("kind") == "numeric":
            values = column.to_numpy(dtype=float)
            outside = ~np.isnan(values) & ((values < spec["min"]) | (values > spec["max"]))
            said = f"{f} outside training range [{spec['min']:g}, {spec['max']:g}]"
        elif spec.get("kind") == "categorical" and spec.get("values") is not None:
            outside = (column.notna() & ~column.isin(spec["values"])).to_numpy()
            said = f"{f}: category not seen in training"
        else:
            continue
        for i in np.flatnonzero(outside):
            flags[i].append(said)
    return ["; ".join(f) for f in flags]


def score_table(
    estimator: Any,
    meta: dict[str, Any],
    df: pd.DataFrame,
    *,
    keep: Sequence[str] = (),
    id_column: str | None = None,
    hmac_key: bytes | None = None,
) -> Scored:
    """Score ``df`` with a verified model and its signed metadata (see :mod:`kfp_rai.serving._batch`)."""
    from kfp_rai.discovery import plan_privacy, pseudonym
    from kfp_rai.serving._fast import model_columns

    features, profile = list(meta["features"]), meta.get("feature_profile", {})
    if df.empty:
        raise DataValidationError("the data has no rows: nothing to score")
    clash = [c for c in (*keep, *([id_column] if id_column else [])) if c in OUTPUT_COLUMNS]
    if clash:
        raise InvalidParameterError(f"columns {clash} would overwrite the output's own {list(OUTPUT_COLUMNS)}")
    absent = [c for c in (*keep, *([id_column] if id_column else [])) if c not in df.columns]
    if absent:
        raise DataValidationError(f"the data has no columns {absent} to keep")
    _check_features(df, features, profile)
    if keep:  # what is copied out is screened first: personal data is refused, never written
        plan_privacy(df[list(keep)], {}, protected=list(keep))
    if id_column is not None and hmac_key is None:
        raise InvalidParameterError(
            f"--id {id_column} needs the pseudonymization key (KFP_RAI_HMAC_KEY or KFP_RAI_HMAC_KEY_FILE): "
            "identifiers are written only as their HMAC pseudonyms"
        )
    # as the server builds its frame from instances (missing values arrive as None or NaN: both missing)
    rows: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in df[features].astype(object).to_dict("records")
    ]
    frame = pd.DataFrame(model_columns(rows, features, profile), columns=features)
    scores = np.asarray(estimator.predict_proba(frame))[:, 1]
    threshold = float(meta.get("decision_threshold", 0.5))
    positive = str(meta.get("positive_label", "1"))
    negative = str(meta.get("negative_label") or f"not {positive}")
    predicted = scores >= threshold
    alerts = _alerts(df, features, profile)
    out = pd.DataFrame(
        {
            **({"id": [f"hmac:{pseudonym(v, hmac_key)}" for v in df[id_column]]} if id_column and hmac_key else {}),
            "probability": np.round(scores, 6),
            "label": np.where(predicted, positive, negative),
            "alerts": alerts,
            **{c: df[c].to_numpy() for c in keep},
        }
    )
    return Scored(out, len(out), int(predicted.sum()), sum(1 for a in alerts if a), positive)
