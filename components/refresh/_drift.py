"""Per-column drift between a reference (training) data set and current data.

Numeric columns: population stability index over the reference's quantile bins (plus the KS
statistic, reported). Categorical columns: chi-square test of the category counts and the
Jensen-Shannon distance; a column drifts only when the shift is both significant and large, since
with tens of thousands of rows a harmless shift is significant too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp

from kfp_rai._report import Report, Section, Table
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import DriftPolicy

_EPS = 1e-4  # floor for empty bins so PSI stays finite (the customary practice)


def population_stability_index(reference: np.ndarray, current: np.ndarray, *, bins: int = 10) -> float:
    """PSI = sum((c - r) * ln(c / r)) over quantile bins of ``reference``; NaNs form their own bin."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    ref_ok, cur_ok = reference[~np.isnan(reference)], current[~np.isnan(current)]
    if ref_ok.size == 0:
        raise DataValidationError("cannot compute PSI: the reference column holds only missing values")
    edges = np.unique(np.quantile(ref_ok, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.append(
        np.bincount(np.searchsorted(edges, ref_ok, side="right"), minlength=len(edges) + 1),
        reference.size - ref_ok.size,
    )
    cur_counts = np.append(
        np.bincount(np.searchsorted(edges, cur_ok, side="right"), minlength=len(edges) + 1), current.size - cur_ok.size
    )
    r = np.maximum(ref_counts / ref_counts.sum(), _EPS)
    c = np.maximum(cur_counts / max(cur_counts.sum(), 1), _EPS)
    return float(np.sum((c - r) * np.log(c / r)))


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # "numeric" | "categorical"
    test: str
    statistic: float
    p_value: float | None
    distance: float | None
    drifted: bool


@dataclass(frozen=True)
class DriftReport(Report):
    """Per-column drift and the refresh decision input ``drift_detected``."""

    kind = "drift_report"
    title = "Data drift"

    drift_detected: bool
    reason: str
    judged: bool
    reference_rows: int
    current_rows: int
    columns: tuple[ColumnDrift, ...]
    drifted_columns: tuple[str, ...]
    policy: dict[str, float]

    def verdict(self) -> str:
        state = "NOT JUDGED" if not self.judged else "DRIFT DETECTED" if self.drift_detected else "NO DRIFT"
        return f"**{state}** — {self.reason}"

    def sections(self) -> list[Section]:
        p = self.policy
        return [
            Section(
                "Rule",
                (
                    f"Numeric: PSI >= {p['psi_threshold']} ({int(p['bins'])} reference quantile bins). "
                    f"Categorical: chi-square p < {p['chi2_alpha']} and Jensen-Shannon distance >= "
                    f"{p['js_threshold']}. Reference {self.reference_rows} rows, current {self.current_rows} rows.",
                ),
            ),
            Section(
                "Columns",
                (
                    Table(
                        ("column", "kind", "test", "statistic", "p-value", "distance", "drifted"),
                        tuple(
                            (c.column, c.kind, c.test, c.statistic, c.p_value, c.distance, c.drifted)
                            for c in self.columns
                        ),
                    ),
                ),
            ),
        ]


def _categorical(ref: pd.Series, cur: pd.Series, policy: DriftPolicy) -> ColumnDrift:
    ref_counts = ref.astype("string").fillna("<missing>").value_counts()
    cur_counts = cur.astype("string").fillna("<missing>").value_counts()
    cats = sorted(set(ref_counts.index) | set(cur_counts.index))
    table = np.array([[ref_counts.get(c, 0) for c in cats], [cur_counts.get(c, 0) for c in cats]], dtype=float)
    if len(cats) < 2:
        return ColumnDrift(ref.name, "categorical", "chi-square", 0.0, 1.0, 0.0, False)
    stat, p_value, _, _ = chi2_contingency(table)
    distance = float(jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum(), base=2))
    drifted = bool(p_value < policy.chi2_alpha and distance >= policy.js_threshold)
    return ColumnDrift(str(ref.name), "categorical", "chi-square", float(stat), float(p_value), distance, drifted)


def _numeric(ref: pd.Series, cur: pd.Series, policy: DriftPolicy) -> ColumnDrift:
    r, c = ref.to_numpy(dtype=float), cur.to_numpy(dtype=float)
    psi = population_stability_index(r, c, bins=policy.bins)
    ks = ks_2samp(r[~np.isnan(r)], c[~np.isnan(c)]) if (~np.isnan(c)).any() else None
    return ColumnDrift(
        str(ref.name),
        "numeric",
        "PSI (KS p, D)",
        psi,
        float(ks.pvalue) if ks is not None else None,
        float(ks.statistic) if ks is not None else None,
        bool(psi >= policy.psi_threshold),
    )


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    policy: DriftPolicy | None = None,
    identifier_columns: Sequence[str] = (),
) -> DriftReport:
    """Compare each column of ``current`` with ``reference``.

    Parameters
    ----------
    reference, current : DataFrame
    columns : list of str, optional
        Columns to compare (default: those the two share, minus ``identifier_columns``).
    identifier_columns : list of str, optional
        Per-row identifiers (e.g. pseudonymized ids): unique values, so comparing them says nothing.
    policy : DriftPolicy, optional

    Returns
    -------
    DriftReport
        ``drift_detected`` is False, with the reason, when ``current`` has fewer than
        ``policy.min_samples`` rows: too little data to judge is not evidence of drift.
    """
    policy = policy or DriftPolicy()
    if reference.empty:
        raise DataValidationError("the drift reference data set holds no rows")
    if columns is None:
        columns = [c for c in reference.columns if c in current.columns and c not in set(identifier_columns)]
    missing = [c for c in columns if c not in reference.columns or c not in current.columns]
    if missing:
        raise DataValidationError(f"columns {missing} are not in both the reference and the current data")
    policy_dict = {k: float(v) for k, v in policy.__dict__.items()}
    if len(current) < policy.min_samples:
        return DriftReport(
            drift_detected=False,
            reason=f"only {len(current)} current rows (< {policy.min_samples}): too few to judge drift",
            judged=False,
            reference_rows=len(reference),
            current_rows=len(current),
            columns=(),
            drifted_columns=(),
            policy=policy_dict,
        )
    results = []
    for col in columns:
        numeric = pd.api.types.is_numeric_dtype(reference[col]) and pd.api.types.is_numeric_dtype(current[col])
        results.append((_numeric if numeric else _categorical)(reference[col], current[col], policy))
    drifted = tuple(r.column for r in results if r.drifted)
    if drifted:
        reason = f"{len(drifted)} of {len(results)} columns drifted: {', '.join(drifted)}"
    else:
        reason = f"none of {len(results)} columns drifted"
    return DriftReport(
        drift_detected=bool(drifted),
        reason=reason,
        judged=True,
        reference_rows=len(reference),
        current_rows=len(current),
        columns=tuple(results),
        drifted_columns=drifted,
        policy=policy_dict,
    )
