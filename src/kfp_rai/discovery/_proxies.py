"""Proxy features: how strongly each feature is associated with each sensitive attribute.

A model that never sees ``sex`` can still lean on ``relationship`` (Husband/Wife) to the same
effect. Association is measured per feature and attribute on a 0-1 scale:

- a categorical feature: Cramér's V of the feature x attribute contingency table, bias-corrected
  (Bergsma 2013: without the correction a 100-level column independent of the attribute scores
  0.43 on 500 rows, a "proxy"), with the normalized mutual information beside it (scikit-learn's
  ``normalized_mutual_info_score``, arithmetic normalization);
- a numeric feature: the correlation ratio eta = sqrt(between-group / total sum of squares) of the
  feature across the attribute's groups (the square root of a one-way ANOVA's R squared), over the
  rows where it is present; if it is missing on some rows, also Cramér's V of "is missing" (trees
  split on missingness: a number missing for every man is a proxy of sex), and the larger counts.

A missing categorical value is its own category. A categorical feature keeps its ``_MAX_LEVELS``
most frequent levels, the rest count as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.groups import group_labels
from kfp_rai.errors import DataValidationError

_MAX_LEVELS = 100
CRAMERS_V = "Cramér's V"
CORRELATION_RATIO = "correlation ratio"
MISSINGNESS = "Cramér's V of being missing"


@dataclass(frozen=True)
class Association:
    """One feature's association with one sensitive attribute, and whether that makes it a proxy."""

    feature: str
    attribute: str
    measure: str
    strength: float
    nmi: float | None
    rows: int
    proxy: bool


def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes of a categorical column's top levels (missing is a level; the rest share one)."""
    labels = group_labels(values)
    top = labels.value_counts().index[:_MAX_LEVELS]
    codes = pd.Index(top).get_indexer(labels)
    codes[codes < 0] = len(top)
    return np.asarray(codes, dtype=np.int64)


def cramers_v(feature: np.ndarray, attribute: np.ndarray, *, corrected: bool = True) -> float:
    """Cramér's V of two integer-coded columns, bias-corrected (Bergsma 2013) unless told not to
    (then it is scipy's ``contingency.association``); 0 when either has a single level."""
    from scipy.stats import chi2_contingency
    from scipy.stats.contingency import association, crosstab

    table = crosstab(feature, attribute).count
    if min(table.shape) < 2:
        return 0.0
    if not corrected:
        return float(association(table, method="cramer"))
    n = float(table.sum())
    r, k = table.shape
    phi2 = float(chi2_contingency(table, correction=False).statistic) / n
    phi2 = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_, k_ = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denominator = min(k_ - 1, r_ - 1)
    return float(np.sqrt(phi2 / denominator)) if denominator > 0 else 0.0


def correlation_ratio(values: np.ndarray, groups: np.ndarray) -> float:
    """eta: sqrt of the share of ``values``' variance explained by ``groups`` (0 for a constant)."""
    values = np.asarray(values, dtype=float)
    counts = np.bincount(groups)
    sums = np.bincount(groups, weights=values)
    present = counts > 0
    mean = values.mean()
    total = float(((values - mean) ** 2).sum())
    if total <= 0:
        return 0.0
    between = float((counts[present] * (sums[present] / counts[present] - mean) ** 2).sum())
    return float(np.sqrt(min(between / total, 1.0)))


def find_proxies(
    df: pd.DataFrame, *, sensitive_features: Sequence[str], features: Sequence[str], threshold: float
) -> tuple[Association, ...]:
    """The association of every feature with every sensitive attribute, strongest first.

    A feature whose strength reaches ``threshold`` is marked a proxy of that attribute.
    """
    from sklearn.metrics import normalized_mutual_info_score

    missing = [c for c in [*sensitive_features, *features] if c not in df.columns]
    if missing:
        raise DataValidationError(f"cannot measure proxies: the data lacks columns {missing}")
    out = []
    for attr in sensitive_features:
        groups = _codes(df[attr])
        for feature in features:
            if feature == attr:
                continue
            column = df[feature]
            if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
                values = column.to_numpy(dtype=float, na_value=np.nan)
                keep = np.isfinite(values)
                strength = correlation_ratio(values[keep], groups[keep]) if keep.any() else 0.0
                measure, nmi, rows = CORRELATION_RATIO, None, int(keep.sum())
                if not keep.all():
                    through_missing = cramers_v((~keep).astype(np.int64), groups)
                    if through_missing > strength:
                        strength, measure, rows = through_missing, MISSINGNESS, len(values)
            else:
                codes = _codes(column)
                strength, measure, rows = cramers_v(codes, groups), CRAMERS_V, len(codes)
                nmi = float(normalized_mutual_info_score(groups, codes))
            out.append(Association(feature, attr, measure, strength, nmi, rows, strength >= threshold))
    return tuple(sorted(out, key=lambda a: (-a.strength, a.attribute, a.feature)))


def proxy_features(associations: Iterable[Association]) -> dict[str, list[str]]:
    """feature -> the sensitive attributes it is a proxy of, strongest association first."""
    out: dict[str, list[str]] = {}
    for a in associations:
        if a.proxy:
            out.setdefault(a.feature, []).append(a.attribute)
    return out


def associations_from_dicts(data: Iterable[Mapping[str, Any]]) -> tuple[Association, ...]:
    """Associations read back from a report's JSON."""
    return tuple(Association(**{k: item[k] for k in Association.__dataclass_fields__}) for item in data)


def known_proxies(
    df: pd.DataFrame,
    *,
    sensitive_features: Sequence[str],
    features: Sequence[str],
    threshold: float,
    datasheet: Mapping[str, Any] | None = None,
) -> tuple[dict[str, list[str]], str]:
    """The proxies among ``features`` and where they come from: the datasheet's (measured on the
    whole data in discovery) when there is one, else measured on ``df``."""
    if datasheet is not None:
        if datasheet.get("kind") != "datasheet" or "associations" not in datasheet:
            raise DataValidationError(
                f"the datasheet input is a {datasheet.get('kind', 'file of unknown kind')!r}, not a datasheet: "
                "wire write_datasheet's datasheet output to it"
            )
        found = proxy_features(associations_from_dicts(datasheet.get("associations", [])))
        return {f: attrs for f, attrs in found.items() if f in features}, "the datasheet (discovery, whole data)"
    measured = find_proxies(df, sensitive_features=sensitive_features, features=features, threshold=threshold)
    return proxy_features(measured), f"measured on these {len(df)} rows"
