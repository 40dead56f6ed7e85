"""Per-column drift between a reference (training) data set and current data, and its verdict.

A drifted column is a *warning*: the model still works, but the evidence it was judged on no longer
describes the data it sees, and the lifecycle retrains on it. Too few current rows is *not judged*,
never "no drift". A column drifts when: numeric, its PSI over the reference's quantile bins reaches
the policy's threshold (KS D and Wasserstein are reported beside it); categorical, its chi-square test is
significant *and* its Jensen-Shannon distance is large, since with tens of thousands of rows a
harmless shift is significant too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kfp_rai.core.report import Figure, Gallery, Report, Section, Table, findings_section
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import DriftPolicy
from kfp_rai.refresh._reference import reference_summary, summarize_current
from kfp_rai.stats.drift import Binned, categorical_test, ks_from_sketches, psi, wasserstein_from_sketches
from kfp_rai.stats.stream import Batches, Source, is_dataframe, open_batches
from kfp_rai.stats.summary import ColumnSummary, DataSummary

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
    wasserstein: float | None = None  # numeric: from the quantile sketches


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
            distribution_chart(
                bins,
                {"reference": ref, "current": cur},
                title=c.column,
                alt=caption,
                status=status,
                xlabel="bin" if c.kind == "numeric" else "category",
            ),
            caption,
        )

    def sections(self) -> list[Section]:
        p = self.policy
        rule = (
            f"Numeric: PSI >= {p['psi_threshold']} over {p['bins']} reference bins (quantile bins, and a bin of its "
            "own for every value holding a bin's share of rows: zeros, caps, codes), or, above its noise "
            f"(critical value at {p.get('ks_alpha', 0.01)} plus the sketches' rank error), a KS distance D >= "
            f"{p.get('ks_threshold', 0.1)} or a Wasserstein distance >= {p.get('wasserstein_threshold', 0.2)} "
            "reference standard deviations (both from KLL quantile sketches). A column constant or entirely "
            "missing in the reference is not judged. "
            f"Categorical: chi-square p < {p['chi2_alpha']} and Jensen-Shannon distance >= {p['js_threshold']} "
            f"over the reference's {p.get('category_limit', 100)} most frequent categories, <other> and <missing>. "
            f"At least {p['min_samples']} current rows, else not judged. Reference {self.reference_rows} rows, "
            f"current {self.current_rows} rows."
        )
        table = Table(
            ("column", "kind", "test", "statistic", "p-value", "distance", "Wasserstein", "drifted"),
            tuple(
                (c.column, c.kind, c.test, c.statistic, c.p_value, c.distance, c.wasserstein, c.drifted)
                for c in self.columns
            ),
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


def _unjudgeable(ref: ColumnSummary, cur: ColumnSummary) -> str | None:
    """Why a numeric column's drift cannot be measured (None: it can)."""
    name = ref.bins.column
    if ref.n == 0:
        return f"{name}: every reference value is missing, so there is no distribution to compare with"
    if ref.minimum == ref.maximum:
        why = (
            f"{name}: constant in the reference ({ref.minimum:.6g} on every row), so a change of distribution "
            "cannot be measured"
        )
        if len(ref.bins.edges) == 2:  # the constant's own bin, [v, nextafter(v)): the rest is another value
            present = cur.total - cur.missing
            other = present - int(cur.counts[1])
            why += f"; {other:,} of {present:,} current values differ from it"
        return why
    return None


def ks_noise(policy: DriftPolicy, n: int, m: int) -> float:
    """The KS distance two samples of ``n`` and ``m`` rows reach by chance at ``policy.ks_alpha``,
    plus the two KLL sketches' rank errors: below it D (and the Wasserstein distance) never count."""
    from kfp_rai.stats.summary import SKETCH_K, _kll

    critical = math.sqrt(-math.log(policy.ks_alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
    return critical + 2 * float(_kll().get_normalized_rank_error(SKETCH_K, False))


def _column(ref: ColumnSummary, cur: ColumnSummary, policy: DriftPolicy) -> tuple[ColumnDrift, Finding]:
    name = ref.bins.column
    binned = Binned(ref.bins.labels(), ref.counts, cur.counts)
    if ref.bins.kind == "numeric":
        value = psi(binned)
        d = ks_from_sketches(ref.sketch, cur.sketch)
        w = wasserstein_from_sketches(ref.sketch, cur.sketch)
        sd = math.sqrt(ref.variance) if ref.n > 1 and ref.variance > 0 else float("nan")
        w_sd = w / sd if w is not None and sd == sd else None
        noise = ks_noise(policy, ref.n, cur.n) if ref.n and cur.n else float("inf")
        above_noise = d is not None and d > noise
        fired = {
            "psi": value >= policy.psi_threshold,
            "ks": above_noise and d is not None and d >= policy.ks_threshold,
            "wasserstein": above_noise and w_sd is not None and w_sd >= policy.wasserstein_threshold,
        }
        why = _unjudgeable(ref, cur)
        drifted = any(fired.values()) and why is None
        column = ColumnDrift(name, "numeric", "PSI (KS D)", value, None, d, drifted, *_shares(binned), wasserstein=w)
        shown = f"PSI {value:.3f}" + (f", KS D {d:.3f} (noise {noise:.3f})" if d is not None else "")
        shown += f", Wasserstein {w_sd:.2f} sd" if w_sd is not None else ""
        if why is not None:
            return column, Finding("drift.unjudgeable", name, GateStatus.NOT_JUDGED, why)
        observed: float | None = value
        rule, limit = "drift.psi_threshold", policy.psi_threshold
        if not fired["psi"] and fired["ks"]:
            rule, observed, limit = "drift.ks_threshold", d, policy.ks_threshold
        elif not fired["psi"] and fired["wasserstein"]:
            rule, observed, limit = "drift.wasserstein_threshold", w_sd, policy.wasserstein_threshold
        verdict = ", ".join(k for k, v in fired.items() if v)
        finding = Finding(
            rule,
            name,
            GateStatus.WARNING if drifted else GateStatus.PASSED,
            f"{name}: {shown}" + (f" (drifted: {verdict})" if drifted else ""),
            observed=observed,
            limit=limit,
        )
        return column, finding
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


def drift_between(
    reference: DataSummary,
    current: DataSummary,
    *,
    policy: DriftPolicy | None = None,
    columns: Sequence[str] | None = None,
    unreferenced: Sequence[str] = (),
) -> DriftReport:
    """Judge drift from two summaries taken over the same bins (see :func:`detect_drift`).
    ``unreferenced`` names current columns the reference lacks: each is not judged."""
    policy = policy or DriftPolicy()
    if reference.rows == 0:
        raise DataValidationError("the drift reference data set holds no rows")
    names = list(columns) if columns is not None else list(reference.columns)
    missing = [c for c in names if c not in reference.columns or (columns is not None and c not in current.columns)]
    if missing:
        raise DataValidationError(f"columns {missing} are not in both the reference and the current data")
    absent = [c for c in names if c not in current.columns]  # a reference column the current data lacks
    names = [c for c in names if c in current.columns]
    other = [c for c in names if reference.columns[c].bins != current.columns[c].bins]
    if other:
        raise DataValidationError(
            f"columns {other} of the current summary were counted over other bins than the reference's: "
            "summarize the current data against this reference (kfp_rai.refresh.summarize_current)"
        )
    sizes = {"reference_rows": reference.rows, "current_rows": current.rows}
    if current.rows < policy.min_samples:
        finding = Finding(
            "drift.min_samples",
            "current data",
            GateStatus.NOT_JUDGED,
            f"only {current.rows} current rows (< {policy.min_samples}): too few to judge drift",
            observed=current.rows,
            limit=policy.min_samples,
        )
        return DriftReport(verdict=Verdict.judge([finding], summary=""), columns=(), policy=policy.to_dict(), **sizes)
    results = [_column(reference.columns[c], current.columns[c], policy) for c in names]
    unjudged = [
        Finding(
            "drift.column_missing",
            c,
            GateStatus.NOT_JUDGED,
            f"{c}: in the reference but not in the current data, so its drift cannot be judged",
        )
        for c in absent
    ] + [
        Finding(
            "drift.column_not_in_reference",
            c,
            GateStatus.NOT_JUDGED,
            f"{c}: in the current data but not in the reference, so its drift cannot be judged (summarize a "
            "reference that has it, or leave it out with --columns)",
        )
        for c in unreferenced
    ]
    verdict = Verdict.judge([*unjudged, *(f for _, f in results)], summary=f"none of {len(results)} columns drifted")
    return DriftReport(verdict=verdict, columns=tuple(c for c, _ in results), policy=policy.to_dict(), **sizes)


def detect_drift(
    reference: Source | Batches | DataSummary,
    current: Source | Batches | DataSummary,
    *,
    columns: Sequence[str] | None = None,
    policy: DriftPolicy | None = None,
    identifier_columns: Sequence[str] = (),
) -> DriftReport:
    """Compare each column of ``current`` with ``reference``.

    Parameters
    ----------
    reference, current : DataFrame, Arrow table, path (parquet, CSV, directory of parquet), or DataSummary
        Data is read in one streamed pass (the reference in two: bins, then counts); a stored
        reference summary is used as it is. A current summary must be taken over the
        reference's bins.
    columns : list of str, optional
        Columns to compare (default: the reference's, minus ``identifier_columns``; one the current
        data lacks is *not judged*, so the verdict fails closed instead of skipping it, and so is a
        current column the reference lacks).
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
    ids = set(identifier_columns)
    if columns is not None:
        missing = [c for c in columns if c not in _names(reference) or c not in _names(current)]
        if missing:
            raise DataValidationError(f"columns {missing} are not in both the reference and the current data")
    if not isinstance(reference, DataSummary):
        chosen = list(columns) if columns is not None else [c for c in _names(reference) if c not in ids]
        reference = reference_summary(reference, columns=chosen, policy=policy)
    chosen = list(columns) if columns is not None else [c for c in reference.columns if c not in ids]
    unreferenced = []
    if columns is None:  # every current column is someone's question: one the reference lacks is not judged
        never = {*reference.columns, *reference.left_out, *ids}  # a column the reference data never had
        unreferenced = [c for c in _names(current) if c not in never]
    if not isinstance(current, DataSummary):
        current = summarize_current(current, _only(reference, chosen))
    return drift_between(_only(reference, chosen), current, policy=policy, columns=columns, unreferenced=unreferenced)


def _names(source: Source | Batches | DataSummary) -> list[str]:
    if isinstance(source, DataSummary):
        return list(source.columns)
    if is_dataframe(source):
        return [str(c) for c in source.columns]  # type: ignore[union-attr]
    return list(open_batches(source).schema.names)


def _only(summary: DataSummary, columns: Sequence[str]) -> DataSummary:
    return DataSummary(summary.rows, {c: summary.columns[c] for c in columns}, summary.left_out)
