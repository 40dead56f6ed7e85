"""What a challenger's card says beyond any card: why it exists (what the refresh found about the
model in production, the data it was trained on) and how it compares with that champion on the
same held-out rows. Drawn from the refresh and comparison reports' JSON only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kfp_rai.core.charts import IntervalRow, Limit, interval_chart
from kfp_rai.core.report import Bullets, Figure, Section, Table
from kfp_rai.core.verdict import GateStatus


def _status(value: Any) -> GateStatus:
    try:
        return GateStatus(value)
    except ValueError:
        return GateStatus.NOT_JUDGED


def challenger_sections(refresh: Mapping[str, Any] | None, comparison: Mapping[str, Any] | None) -> list[Section]:
    """The card's "Why this version exists" and "Against the champion" sections ([] for a model
    that is no challenger)."""
    if refresh is None and comparison is None:
        return []
    out = []
    if refresh is not None:
        champion, window, decision = refresh.get("champion", {}), refresh.get("window", {}), refresh.get("decision", {})
        triggers = [f for f in refresh.get("findings", []) if f.get("status") in ("warning", "failed")]
        out.append(
            Section(
                "Why this version exists",
                (
                    f"A refresh of the {champion.get('role', 'champion')} (sha256 `{champion.get('sha256')}`) at "
                    f"{window.get('time')} found: {', '.join(decision.get('triggers', [])) or 'nothing'}. "
                    f"Decision: {decision.get('reason', '')}.",
                    f"Current data: {window.get('name')} ({window.get('rows')} rows, {window.get('labelled_rows')} "
                    f"labelled); this challenger trained on the {decision.get('training_data') or 'current'} data.",
                    Bullets(tuple(f"{f['rule']} [{f['subject']}]: {f['message']}" for f in triggers) or ("none",)),
                    "It is registered as a candidate under the challenger alias: nothing serves it until a person "
                    "approves and promotes it.",
                ),
            )
        )
    if comparison is not None:
        rows = comparison.get("comparisons", [])
        table = Table(
            ("metric", "subject", "champion", "challenger", "difference", "paired interval", "limit", "status"),
            tuple(
                (r["metric"], r["subject"], r["champion"], r["challenger"], r["difference"],
                 tuple(r["interval"]) if r.get("interval") else None, r["limit"], _status(r["status"]))
                for r in rows
            ),
        )  # fmt: skip
        chart = interval_chart(
            [
                IntervalRow(
                    f"{r['metric']} ({r['subject']})",
                    r["difference"],
                    r["interval"][0] if r.get("interval") else None,
                    r["interval"][1] if r.get("interval") else None,
                    None,
                    _status(r["status"]),
                )
                for r in rows
            ],
            title="Challenger minus champion on the same rows, with paired intervals",
            xlabel="difference (challenger - champion)",
            ylabel="metric (subject)",
            alt="difference of each metric between challenger and champion with its interval",
            limits=(Limit(0.0, "no change"),),
        )
        out.append(
            Section(
                "Against the champion",
                (
                    f"Both models scored the same {comparison.get('rows')} held-out rows; intervals are "
                    f"{comparison.get('confidence', 0.95):.0%} percentiles of {comparison.get('n_boot')} paired "
                    f"resamples. Non-regression: {comparison.get('reason', '')}",
                    table,
                    Figure(chart, "A dot left of zero: lower for the challenger (worse for accuracy, ROC AUC and the "
                           "parity ratio; better for the differences)."),
                ),
            )
        )  # fmt: skip
    return out
