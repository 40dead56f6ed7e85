"""The validation report: overall performance, per-group metrics with intervals, the verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kfp_rai.core.report import Figure, Report, Section, Table, findings_section, fmt
from kfp_rai.core.verdict import GateStatus, Verdict
from kfp_rai.validation._metrics import DISPARITIES, AttributeFairness, GroupMetrics


def _compared(f: AttributeFairness, metric: str) -> list[GroupMetrics]:
    """The groups a disparity limit compares on ``metric``, as the gate takes them: groups large
    enough to judge, and for TPR and FPR (equalized odds) only those whose TPR and FPR are both judged."""
    odds = metric in ("true_positive_rate", "false_positive_rate")
    return [
        g
        for g in f.groups
        if not g.too_small
        and not math.isnan(getattr(g, metric))
        and not (
            odds
            and (
                {"true_positive_rate", "false_positive_rate"} & g.unjudged.keys()
                or math.isnan(g.true_positive_rate)
                or math.isnan(g.false_positive_rate)
            )
        )
    ]


def _wider_odds_gap(f: AttributeFairness) -> str:
    """The rate (TPR or FPR) whose measured gap between the groups equalized odds compares is larger."""
    tpr = [g.true_positive_rate for g in _compared(f, "true_positive_rate")]
    fpr = [g.false_positive_rate for g in _compared(f, "false_positive_rate")]
    gap_tpr = max(tpr) - min(tpr) if tpr else 0.0
    gap_fpr = max(fpr) - min(fpr) if fpr else 0.0
    return "true_positive_rate" if gap_tpr >= gap_fpr else "false_positive_rate"


def _group_status(
    g: GroupMetrics, value: float, bound: float, compared: list[GroupMetrics], enforced: bool, *, ceiling: bool
) -> GateStatus:
    """A group's colour in a chart: not judged when the limit does not compare it (too small, or its
    rate is not judged), failed when its value lies beyond the bound the policy's disparity limits
    set relative to the best-off group: below a floor, or above a ceiling (FPR: higher is worse)."""
    if g not in compared or not math.isfinite(bound):
        return GateStatus.NOT_JUDGED
    if (value > bound) if ceiling else (value < bound):
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
        """Selection rate, TPR and FPR per group with intervals and the policy's bounds on them."""
        from kfp_rai.core.charts import IntervalRow, Limit, interval_chart

        p = self.policy
        ratio, diff, eo = (
            p["min_demographic_parity_ratio"],
            p["max_demographic_parity_difference"],
            p["max_equalized_odds_difference"],
        )
        sel, tpr, fpr = (_compared(f, m) for m in ("selection_rate", "true_positive_rate", "false_positive_rate"))
        top_sel = max((g.selection_rate for g in sel), default=math.nan)
        top_tpr = max((g.true_positive_rate for g in tpr), default=math.nan)
        low_fpr = min((g.false_positive_rate for g in fpr), default=math.nan)
        floors = "the lowest values the policy's disparity limits allow, relative to the best-off group"
        charts = (
            (
                "selection_rate",
                "selection rate",
                sel,
                (Limit(top_sel * ratio, f"{ratio} × highest"), Limit(top_sel - diff, f"highest − {diff}")),
                False,
                f"lines: {floors} (the highest selection rate among the groups large enough to judge).",
            ),
            (
                "true_positive_rate",
                "true positive rate",
                tpr,
                (Limit(top_tpr - eo, f"highest − {eo}"),),
                False,
                f"line: {floors} (the highest TPR among the groups whose TPR and FPR are judged: equalized odds).",
            ),
            (
                "false_positive_rate",
                "false positive rate",
                fpr,
                (Limit(low_fpr + eo, f"lowest + {eo}"),),
                True,
                "line: the highest FPR the equalized-odds limit allows: a higher FPR is worse (more negatives "
                "wrongly selected), so the best-off group is the one with the lowest FPR among the groups whose "
                f"TPR and FPR are judged, and a group above lowest + {eo} fails.",
            ),
        )
        figures = []
        for metric, label, compared, limits, ceiling, lines in charts:
            bound = min(limit.value for limit in limits) if ceiling else max(limit.value for limit in limits)
            rows = [
                IntervalRow(
                    g.group,
                    getattr(g, metric),
                    low=g.intervals[metric][0] if metric in g.intervals else None,
                    high=g.intervals[metric][1] if metric in g.intervals else None,
                    status=_group_status(
                        g, getattr(g, metric), bound, compared, self.verdict.enforced, ceiling=ceiling
                    ),
                )
                for g in f.groups
            ]
            rows, judged_note = self._as_the_gate_judged(f, metric, rows, compared, ceiling=ceiling)
            caption = (
                f"{f.attribute}: {label} per group with its {p['confidence_level']:.0%} bootstrap interval (Wilson's "
                f"where resampling cannot vary the rate); {lines} Grey: a group the limit does not compare (too "
                "small, or its rate from too few cases)."
                + (
                    " Colours judge each measured value; the gate judged the least favourable end of each "
                    "disparity's interval (see Findings)."
                    if p.get("judge_on") == "interval"
                    else ""
                )
                + judged_note
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

    def _as_the_gate_judged(
        self, f: AttributeFairness, metric: str, rows: list[Any], compared: list[GroupMetrics], *, ceiling: bool
    ) -> tuple[list[Any], str]:
        """A chart never looks all green beside a failed limit: where the gate failed (or warned on) a
        disparity of ``f`` that this chart draws — on an interval's end, its measured value within the
        line — the worst-off group it compares takes that status, and the caption says why. Equalized
        odds is drawn on the chart (TPR or FPR) whose measured gap is the larger."""
        from dataclasses import replace

        rules = (
            ("validation.max_demographic_parity_difference", "validation.min_demographic_parity_ratio")
            if metric == "selection_rate"
            else ("validation.max_equalized_odds_difference",)
        )
        if metric != "selection_rate" and metric != _wider_odds_gap(f):
            return rows, ""
        bad = [
            x
            for x in self.verdict.findings
            if x.subject == f.attribute and x.rule in rules and x.status in (GateStatus.FAILED, GateStatus.WARNING)
        ]
        coloured = any(r.status in (GateStatus.FAILED, GateStatus.WARNING) for r in rows)
        if not bad or coloured or not compared:
            return rows, ""
        values = [getattr(g, metric) for g in compared]
        worst = compared[values.index(max(values) if ceiling else min(values))].group
        status = GateStatus.FAILED if any(x.status is GateStatus.FAILED for x in bad) else GateStatus.WARNING
        rows = [replace(r, status=status) if r.label == worst else r for r in rows]
        said = "; ".join(x.message for x in bad)
        return rows, (
            f" {worst} is coloured {status.value}: the gate judged the interval's least favourable end, not the "
            f"measured value ({said})."
        )

    def _roc_chart(self, f: AttributeFairness) -> Figure:
        """One ROC curve per group whose ROC AUC is judged, the overall curve and the diagonal."""
        from kfp_rai.core.charts import Curve, roc_chart

        p = self.policy
        drawn = [g for g in f.groups if g.judged_roc]
        left_out = [
            f"{g.group} ("
            + (
                f"{g.count} < {p['min_group_size']} rows"
                if g.too_small
                else g.unjudged.get("roc_auc", "no curve: one class only")
            )
            + ")"
            for g in f.groups
            if not g.judged_roc
        ]
        caption = (
            f"{f.attribute}: ROC curve of each group (true against false positive rate as the decision threshold "
            "moves), the whole test set's in black, chance on the diagonal; a curve nearer the top left ranks that "
            "group's cases better. "
            + (f"Left out, too few cases to judge: {'; '.join(left_out)}." if left_out else "Every group is drawn.")
        )
        overall = Curve("all rows", self.roc_curve["fpr"], self.roc_curve["tpr"]) if self.roc_curve.get("fpr") else None
        curves = [Curve(f"{g.group} (AUC {g.roc_auc:.3f})", g.roc["fpr"], g.roc["tpr"]) for g in drawn]
        return Figure(
            roc_chart(curves, overall=overall, title=f"{f.attribute}: ROC curve per group", alt=caption), caption
        )

    def _confusion_table(self, f: AttributeFairness) -> Table:
        """Each group's confusion cells, counts (the rates above are their ratios)."""
        return Table(
            (
                "group",
                "rows",
                "true negatives",
                "false positives",
                "false negatives",
                "true positives",
                "positives (actual)",
                "negatives (actual)",
                "predicted positive",
            ),
            tuple(
                (g.group, g.count, *g.cells, g.cells[2] + g.cells[3], g.cells[0] + g.cells[1], g.cells[1] + g.cells[3])
                for g in f.groups
            ),
        )

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
            Section("Overall performance", (overall, self._overall_confusion())),
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
            described = (
                self._roc_chart(f),
                "Confusion cells per group (counts; every rate above is a ratio of them):",
                self._confusion_table(f),
            )
            blocks: tuple[Any, ...] = (
                (*self._charts(f), table, *described)
                if f.gated
                else ("Reported, not gated (policy: validation.gate_intersections is false).", table, *described)
            )
            sections.append(Section(f"By {f.attribute}", blocks))
        if self.tradeoff:
            sections.append(self._tradeoff_section())
        sections.append(self._reviewer_section())
        return sections

    def _overall_confusion(self) -> Table:
        """The confusion matrix of the whole test set: counts, with the totals of each row and column."""
        (tn, fp), (fn, tp) = self.confusion_matrix
        return Table(
            ("confusion matrix (rows)", "predicted negative", "predicted positive", "total"),
            (
                ("actual negative", tn, fp, tn + fp),
                ("actual positive", fn, tp, fn + tp),
                ("total", tn + fn, fp + tp, tn + fp + fn + tp),
            ),
        )

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
