"""The validation report: overall performance, per-group metrics with intervals, the verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kfp_rai.core.report import Figure, Report, Section, Table, findings_section, fmt
from kfp_rai.core.verdict import GateStatus, Verdict
from kfp_rai.validation._metrics import DISPARITIES, AttributeFairness, GroupMetrics


def _best(f: AttributeFairness, metric: str) -> float:
    return max((v for g in f.groups if not math.isnan(v := getattr(g, metric))), default=math.nan)


def _group_status(g: GroupMetrics, value: float, floor: float, policy: dict[str, Any], enforced: bool) -> GateStatus:
    """A group's colour in a chart: not judged when too small, failed when its value lies below the
    lowest the policy's disparity limits allow relative to the best-off group."""
    if g.count < policy["min_group_size"] or math.isnan(value):
        return GateStatus.NOT_JUDGED
    if value < floor:
        return GateStatus.FAILED if enforced else GateStatus.WARNING
    return GateStatus.PASSED


@dataclass(frozen=True)
class ValidationReport(Report):
    """Overall performance, fairness by group, and the validation gate's verdict."""

    kind = "validation_report"
    title = "Model validation"

    verdict: Verdict
    rows: int
    threshold: float
    overall: dict[str, float]
    overall_intervals: dict[str, tuple[float, float]]
    fairness: tuple[AttributeFairness, ...]
    confusion_matrix: tuple[tuple[int, int], tuple[int, int]]
    roc_curve: dict[str, list[float]]
    policy: dict[str, Any]
    reviewer: dict[str, Any] | None = None
    tradeoff: dict[str, Any] | None = None

    def disparities(self) -> dict[str, dict[str, float]]:
        """attribute -> disparity name -> value (the numbers the gate judged)."""
        return {f.attribute: f.disparities() for f in self.fairness}

    def _charts(self, f: AttributeFairness) -> tuple[Figure, ...]:
        from kfp_rai.core.charts import IntervalRow, Limit, interval_chart

        p = self.policy
        top_sel, top_tpr = _best(f, "selection_rate"), _best(f, "true_positive_rate")
        ratio, diff, eo = (
            p["min_demographic_parity_ratio"],
            p["max_demographic_parity_difference"],
            p["max_equalized_odds_difference"],
        )
        charts = (
            (
                "selection_rate",
                "selection rate",
                (Limit(top_sel * ratio, f"{ratio} × highest"), Limit(top_sel - diff, f"highest − {diff}")),
            ),
            ("true_positive_rate", "true positive rate", (Limit(top_tpr - eo, f"highest − {eo}"),)),
        )
        figures = []
        for metric, label, limits in charts:
            floor = max(limit.value for limit in limits)
            rows = [
                IntervalRow(
                    g.group,
                    getattr(g, metric),
                    low=g.intervals[metric][0] if metric in g.intervals else None,
                    high=g.intervals[metric][1] if metric in g.intervals else None,
                    status=_group_status(g, getattr(g, metric), floor, p, self.verdict.enforced),
                )
                for g in f.groups
            ]
            caption = (
                f"{f.attribute}: {label} per group with its {p['confidence_level']:.0%} bootstrap interval (Wilson's "
                "where resampling cannot vary the rate); dashed "
                "lines are the lowest values the policy's disparity limits allow (relative to the best-off group)."
            )
            figures.append(
                Figure(
                    interval_chart(
                        rows, title=f"{f.attribute}: {label}", xlabel=label, alt=caption, limits=limits, xlim=(0, 1)
                    ),
                    caption,
                )
            )
        return tuple(figures)

    def sections(self) -> list[Section]:
        p = self.policy
        level = f"{p['confidence_level']:.0%}"

        def ci(name: str, intervals: dict[str, tuple[float, float]], group: GroupMetrics | None = None) -> Any:
            if group is not None and group.too_small:
                return f"too small to judge ({group.count} < {self.policy['min_group_size']} rows)"
            if group is not None and name in group.unjudged:  # the value stands; nothing is judged on it
                shown = intervals.get(name)
                return f"not judged: {group.unjudged[name]}" + (f" ({fmt(shown)})" if shown else "")
            return intervals.get(name)

        overall = Table(
            ("metric", "value", f"{level} interval"),
            tuple((k, v, ci(k, self.overall_intervals)) for k, v in self.overall.items()),
        )
        disp = Table(
            (
                "attribute",
                "gated",
                *(n.replace("_", " ") for n in DISPARITIES),
                *(f"{n.replace('_', ' ')} interval" for n in DISPARITIES),
            ),
            tuple(
                (
                    f.attribute,
                    f.gated,
                    *(getattr(f, n) for n in DISPARITIES),
                    *(ci(n, f.intervals) for n in DISPARITIES),
                )
                for f in self.fairness
            ),
        )
        rules = (
            f"accuracy >= {p['min_accuracy']}, ROC AUC >= {p['min_roc_auc']}; per sensitive attribute: demographic "
            f"parity difference <= {p['max_demographic_parity_difference']}, ratio >= "
            f"{p['min_demographic_parity_ratio']}, equalized odds difference <= {p['max_equalized_odds_difference']}; "
            f"every group >= {p['min_group_size']} test rows, else too small to judge (not judged; disparities are "
            "taken between the groups large enough); a TPR (precision) from fewer than "
            f"{p.get('min_positives', 10)} positives (predicted positives), an FPR from fewer than "
            f"{p.get('min_negatives', 10)} negatives, is not judged, and equalized odds is taken without that group. "
            + (
                "The intersection of the sensitive attributes is judged the same way. "
                if p.get("gate_intersections", False)
                else "Intersections are reported, not gated. "
            )
            + (
                "Each limit is judged on the least favourable end of its interval. "
                if p.get("judge_on") == "interval"
                else "Each limit is judged on the measured value (its interval shown beside it). "
            )
            + f"Enforced: {'yes' if p['enforce'] else 'no (violations recorded as warnings)'}."
        )
        sections = [
            Section(
                "Rule",
                (
                    rules,
                    f"{self.rows} held-out rows; decision threshold {self.threshold}; "
                    f"{p['bootstrap_samples']} bootstrap resamples of the confusion counts for {level} intervals.",
                ),
            ),
            findings_section(self.verdict),
            Section("Overall performance", (overall,)),
            Section("Disparities", (disp,)),
        ]
        for f in self.fairness:
            table = Table(
                (
                    "group",
                    "rows",
                    "accuracy",
                    "selection rate",
                    "selection rate interval",
                    "TPR",
                    "TPR interval",
                    "FPR",
                    "FPR interval",
                    "precision",
                    "precision interval",
                    "ROC AUC",
                    "ROC AUC interval",
                ),
                tuple(
                    (
                        g.group,
                        g.count,
                        g.accuracy,
                        g.selection_rate,
                        ci("selection_rate", g.intervals, g),
                        g.true_positive_rate,
                        ci("true_positive_rate", g.intervals, g),
                        g.false_positive_rate,
                        ci("false_positive_rate", g.intervals, g),
                        g.precision,
                        ci("precision", g.intervals, g),
                        g.roc_auc,
                        ci("roc_auc", g.intervals, g),
                    )
                    for g in f.groups
                ),
            )
            blocks: tuple[Any, ...] = (
                (*self._charts(f), table)
                if f.gated
                else ("Reported, not gated (policy: validation.gate_intersections is false).", table)
            )
            sections.append(Section(f"By {f.attribute}", blocks))
        if self.tradeoff:
            sections.append(self._tradeoff_section())
        sections.append(self._reviewer_section())
        return sections

    def _tradeoff_section(self) -> Section:
        t = self.tradeoff or {}
        rows = t.get("rows", [])
        columns = [k for k in rows[0] if k != "status"] if rows else []
        table = Table(
            ("status", *columns),
            tuple((GateStatus(r["status"]), *(r[c] for c in columns)) for r in rows),
        )
        return Section(
            "Mitigation trade-off (same test data)",
            (
                f"The model was trained with fairlearn's {t.get('method')} ({t.get('constraint')}). Below, the "
                "unmitigated model it was built from, judged on the same test rows by the same policy (its status "
                "leaves out the explanation); the gate judges the mitigated model.",
                table,
            ),
        )

    def _reviewer_section(self) -> Section:
        from kfp_rai.validation._reviewer import reviewer_summary

        r = self.reviewer
        if not r:
            return Section("Human-computed check", (reviewer_summary(r),))
        table = Table(
            ("status", "metric", "reviewer", "ours", "difference"),
            tuple(
                (GateStatus(c["status"]), c["metric"], c["theirs"], c["ours"], c["difference"])
                for c in r["comparisons"]
            ),
        )
        return Section("Human-computed check", (reviewer_summary(r), table, *((r["notes"],) if r.get("notes") else ())))
