"""How groups of people are named in every report: one label for missing values, one separator
for intersections, so a group reads the same in discovery, validation, explanation and drift."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

MISSING = "<missing>"
INTERSECTION_SEP = " × "


def group_labels(values: pd.Series) -> pd.Series:
    """Each value as text; a missing value is its own group, ``<missing>``, never dropped."""
    return values.astype("string").fillna(MISSING)


def intersection_name(attributes: Sequence[str]) -> str:
    """``sex × race`` for the intersection of ``sex`` and ``race``."""
    return INTERSECTION_SEP.join(attributes)


def intersection_labels(df: pd.DataFrame, attributes: Sequence[str]) -> pd.Series:
    """Each row's intersectional group, e.g. ``Female × Black``."""
    labels = [group_labels(df[a]) for a in attributes]
    out = labels[0]
    for more in labels[1:]:
        out = out + INTERSECTION_SEP + more
    return out
