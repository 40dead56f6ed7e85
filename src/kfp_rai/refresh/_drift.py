"""Per-column drift between a reference (training) data set and current data, and its verdict.

A drifted column is a *warning*: the model still works, but the evidence it was judged on no longer
describes the data it sees, and the lifecycle retrains on it. Too few current rows is *not judged*,
never "no drift". A column drifts when: numeric, its PSI over the reference's quantile bins reaches
the policy's threshold (the KS test is reported beside it); categorical, its chi-square test is
significant *and* its Jensen-Shannon distance is large, since with tens of thousands of rows a
harmless shift is significant too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.groups import group_labels
from kfp_rai.core.report import Figure, Gallery, Report, Section, Table, findings_section
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import DriftPolicy
from kfp_rai.stats.drift import Binned, categorical_test, ks_test, psi, quantile_bins

_CHART_CATEGORIES = 12


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift statistics and its binned distributions (shares) in both data sets."""

    column: str
    kind: str  # "numeric" | "categorical"
    test: str
    statistic: float
    p_value: float | None
    distance: float | None
    drifted: bool
    bins: tuple[str, ...]
    reference_shares: tuple[float, ...]
    current_shares: tuple[float, ...]


@dataclass(frozen=True)
class DriftReport(Report):
    """Per-column drift and the refresh decision input ``drift_detected``."""

    kind = "drift_report"
    title = "Data drift"

    verdict: Verdict
    reference_rows: int
    current_rows: int
    columns: tuple[ColumnDrift, ...]
    policy: dict[str, Any]

    @property
    def judged(self) -> bool:
        return self.verdict.status is not GateStatus.NOT_JUDGED

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.columns if c.drifted)

    @property
    def drift_detected(self) -> bool:
        return bool(self.drifted_columns)

    def to_dict(self, subject: Any = None) -> dict[str, Any]:
        return {
            **super().to_dict(subject),
            "judged": self.judged,
            "drift_detected": self.drift_detected,
            "drifted_columns": list(self.drifted_columns),
        }

    def _chart(self, c: ColumnDrift) -> Figure:
        from kfp_rai.core.charts import distribution_chart

        bins, ref, cur = list(c.bins), list(c.reference_shares), list(c.current_shares)
        if c.kind == "categorical" and len(bins) > _CHART_CATEGORIES:
            keep = sorted(range(len(bins)), key=lambda i: -max(ref[i], cur[i]))[: _CHART_CATEGORIES - 1]
            rest = [i for i in range(len(bins)) if i not in keep]
            bins = [bins[i] for i in keep] + [f"other ({len(rest)})"]
            ref = [ref[i] for i in keep] + [sum(ref[i] for i in rest)]
            cur = [cur[i] for i in keep] + [sum(cur[i] for i in rest)]
        status = GateStatus.WARNING if c.drifted else GateStatus.PASSED
        caption = f"{c.column}: share of rows per {'bin' if c.kind == 'numeric' else 'category'}, reference vs current"
        return Figure(
            distribution_chart(bins, {"reference": ref, "current": cur}, title=c.column, alt=caption, status=status),
            caption,
        )

    def sections(self) -> list[Section]:
        p = self.policy
        rule = (
            f"Numeric: PSI >= {p['psi_threshold']} over {p['bins']} reference quantile bins (KS test reported). "
            f"Categorical: chi-square p < {p['chi2_alpha']} and Jensen-Shannon distance >= {p['js_threshold']}. "
            f"At least {p['min_samples']} current rows, else not judged. Reference {self.reference_rows} rows, "
            f"current {self.current_rows} rows."
        )
        table = Table(
            ("column", "kind", "test", "statistic", "p-value", "distance", "drifted"),
            tuple((c.column, c.kind, c.test, c.statistic, c.p_value, c.distance, c.drifted) for c in self.columns),
        )
        ordered = sorted(self.columns, key=lambda c: not c.drifted)
        return [
            Section("Rule", (rule,)),
            findings_section(self.verdict),
            Section("Columns", (table,)),
            Section(
                "Reference vs current",
                (
                    "Share of rows per bin (numeric: the reference's quantile bins) or category, drifted columns "
                    "first; the current data in the column's status colour.",
                    Gallery(tuple(self._chart(c) for c in ordered)),
                ),
            ),
        ]


def _column(ref: pd.Series, cur: pd.Series, policy: DriftPolicy) -> tuple[ColumnDrift, Finding]:
    name = str(ref.name)
    numeric = pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur)
    if numeric:
        try:
            binned = quantile_bins(ref.to_numpy(dtype=float), cur.to_numpy(dtype=float), policy.bins)
        except ValueError as exc:
            raise DataValidationError(f"cannot judge drift of {name!r}: {exc}") from exc
        value = psi(binned)
        ks = ks_test(ref.to_numpy(dtype=float), cur.to_numpy(dtype=float))
        drifted = value >= policy.psi_threshold
        column = ColumnDrift(
            name,
            "numeric",
            "PSI (KS p, D)",
            value,
            ks[1] if ks else None,
            ks[0] if ks else None,
            drifted,
            *_shares(binned),
        )
        finding = Finding(
            "drift.psi_threshold",
            name,
            GateStatus.WARNING if drifted else GateStatus.PASSED,
            f"{name}: PSI {value:.3f} {'>=' if drifted else '<'} {policy.psi_threshold}",
            observed=value,
            limit=policy.psi_threshold,
        )
        return column, finding
    ref_counts, cur_counts = group_labels(ref).value_counts(), group_labels(cur).value_counts()
    cats = sorted(set(ref_counts.index) | set(cur_counts.index))
    binned = Binned(
        tuple(cats),
        np.array([ref_counts.get(c, 0) for c in cats]),
        np.array([cur_counts.get(c, 0) for c in cats]),
    )
    stat, p_value, distance = categorical_test(binned)
    drifted = p_value < policy.chi2_alpha and distance >= policy.js_threshold
    column = ColumnDrift(
        name, "categorical", "chi-square (JS distance)", stat, p_value, distance, drifted, *_shares(binned)
    )
    message = f"{name}: Jensen-Shannon distance {distance:.3f}, chi-square p {p_value:.3g}"
    finding = Finding(
        "drift.js_threshold",
        name,
        GateStatus.WARNING if drifted else GateStatus.PASSED,
        message + (" (drifted)" if drifted else ""),
        observed=distance,
        limit=policy.js_threshold,
    )
    return column, finding


def _shares(binned: Binned) -> tuple[tuple[str, ...], tuple[float, ...], tuple[float, ...]]:
    ref, cur = binned.shares()
    return binned.labels, tuple(float(v) for v in ref), tuple(float(v) for v in cur)


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
        Its verdict is a warning when a column drifted, and not judged when ``current`` has fewer
        than ``policy.min_samples`` rows: too little data to judge is not evidence of no drift.
    """
    policy = policy or DriftPolicy()
    if reference.empty:
        raise DataValidationError("the drift reference data set holds no rows")
    if columns is None:
        columns = [c for c in reference.columns if c in current.columns and c not in set(identifier_columns)]
    missing = [c for c in columns if c not in reference.columns or c not in current.columns]
    if missing:
        raise DataValidationError(f"columns {missing} are not in both the reference and the current data")
    sizes = {"reference_rows": len(reference), "current_rows": len(current)}
    if len(current) < policy.min_samples:
        finding = Finding(
            "drift.min_samples",
            "current data",
            GateStatus.NOT_JUDGED,
            f"only {len(current)} current rows (< {policy.min_samples}): too few to judge drift",
            observed=len(current),
            limit=policy.min_samples,
        )
        return DriftReport(verdict=Verdict.judge([finding], summary=""), columns=(), policy=policy.to_dict(), **sizes)
    results = [_column(reference[c], current[c], policy) for c in columns]
    verdict = Verdict.judge([f for _, f in results], summary=f"none of {len(results)} columns drifted")
    return DriftReport(verdict=verdict, columns=tuple(c for c, _ in results), policy=policy.to_dict(), **sizes)
