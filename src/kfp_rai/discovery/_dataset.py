"""Schema checks of a labelled tabular data set, and its seeded, stratified split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kfp_rai.core.params import check_seed
from kfp_rai.errors import DataValidationError, InvalidParameterError

_MSG_MISSING_COL = "column {col!r} ({role}) is not in the data; its columns are: {cols}"
_MSG_ONE_CLASS = "target {target!r} has a single value ({value}): a classifier needs two classes"
_MSG_LABEL = (
    "positive label {label!r} does not occur in target {target!r}; its values are: {values}. "
    "Pass --positive-label with one of them"
)
_MSG_CLASSES = (
    "target {target!r} has {n} distinct values ({values}); kfp-rai judges binary classifiers: "
    "map it to two classes first"
)


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`validate_dataset` found: sizes, label balance and missingness."""

    rows: int
    columns: int
    target: str
    positive_label: str
    positive_rate: float
    sensitive_features: tuple[str, ...]
    missing_share: dict[str, float]


_COMMON = 5  # a label value is quoted in a message only if this many rows carry it


def _labels(counts: pd.Series, limit: int = 20) -> str:
    """Label values for a message: only those many rows share (a value on one or two rows may be
    someone's data typed into the wrong column), the rest counted, never quoted."""
    common = [str(v) for v, n in counts.items() if n >= _COMMON]
    rare = len(counts) - len(common)
    shown = _short(sorted(common), limit) if common else ""
    withheld = f"{rare} value{'s' if rare != 1 else ''} on fewer than {_COMMON} rows, not shown" if rare else ""
    return "; ".join(part for part in (shown, withheld) if part)


def _short(values: Sequence[object], limit: int = 20) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (", ..." if len(values) > limit else "")


def validate_dataset(
    df: pd.DataFrame,
    *,
    target: str,
    positive_label: str,
    sensitive_features: Sequence[str],
) -> DatasetSummary:
    """Check that ``df`` can be used as a binary classification data set with sensitive columns.

    Raises
    ------
    DataValidationError
        Empty data, a missing column, a target with other than two classes, or a positive label
        that never occurs.
    """
    if isinstance(sensitive_features, str):
        raise InvalidParameterError("sensitive_features must be a list of column names, not a string")
    if not sensitive_features:
        raise InvalidParameterError(
            "name at least one sensitive feature (e.g. --sensitive sex): without one, neither "
            "representativeness nor fairness can be judged"
        )
    if df.empty:
        raise DataValidationError("the data set holds no rows")
    repeated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if repeated:
        raise DataValidationError(f"columns {repeated} appear more than once: give every column its own name")
    cols = list(df.columns)
    for col, role in [(target, "target"), *[(s, "sensitive feature") for s in sensitive_features]]:
        if col not in df.columns:
            raise DataValidationError(_MSG_MISSING_COL.format(col=col, role=role, cols=_short(cols)))
    if target in sensitive_features:
        raise InvalidParameterError(f"the target {target!r} cannot also be a sensitive feature")
    counts = df[target].dropna().astype(str).value_counts()
    values = list(counts.index)
    if len(values) == 1:
        raise DataValidationError(_MSG_ONE_CLASS.format(target=target, value=_labels(counts)))
    if len(values) == 0:
        raise DataValidationError(f"target {target!r} holds only missing values")
    if str(positive_label) not in values:
        raise DataValidationError(_MSG_LABEL.format(label=positive_label, target=target, values=_labels(counts)))
    if len(values) > 2:
        raise DataValidationError(_MSG_CLASSES.format(target=target, n=len(values), values=_labels(counts)))
    if df[target].isna().any():
        raise DataValidationError(
            f"target {target!r} has {int(df[target].isna().sum())} missing values: drop or label them"
        )
    for col in sensitive_features:
        groups = df[col].dropna().unique()
        if len(groups) == 0:
            raise DataValidationError(
                f"sensitive feature {col!r} holds only missing values: no group can be judged; fill it in or "
                "choose another"
            )
        if len(groups) == 1:
            raise DataValidationError(
                f"sensitive feature {col!r} holds a single group: fairness between groups cannot be judged"
            )
    numeric = df.select_dtypes(include="number")
    infinite = {str(c): int(n) for c, n in np.isinf(numeric.astype(float)).sum().items() if n}
    if infinite:
        raise DataValidationError(
            f"infinite values in {infinite} (column: count): replace them, or make them missing (blank)"
        )
    y = df[target].astype(str) == str(positive_label)
    return DatasetSummary(
        rows=int(len(df)),
        columns=int(df.shape[1]),
        target=target,
        positive_label=str(positive_label),
        positive_rate=float(y.mean()),
        sensitive_features=tuple(sensitive_features),
        missing_share={str(c): float(v) for c, v in df.isna().mean().items() if v > 0},
    )


def split_dataset(df: pd.DataFrame, *, target: str, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into train and test, stratified on the target, reproducible through ``seed``."""
    from sklearn.model_selection import train_test_split  # only the split task pays for it

    if not 0.0 < test_size < 1.0:
        raise InvalidParameterError(f"test_size must be in (0, 1), got {test_size!r}")
    check_seed(seed)
    if target not in df.columns:
        raise DataValidationError(_MSG_MISSING_COL.format(col=target, role="target", cols=_short(list(df.columns))))
    counts = df[target].value_counts()
    stratify = df[target] if counts.min() >= 2 else None
    n_test = int(np.ceil(len(df) * test_size))
    if n_test < 1 or len(df) - n_test < 1:
        raise DataValidationError(f"{len(df)} rows cannot be split with test_size={test_size}")
    train, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)
