"""``index.html`` of a run directory: the outcome, each stage's verdict, and a link to every report.

Rendered from ``run.json`` alone, with the same status colours as every report; self-contained
(no external resource), links relative to the run directory.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from kfp_rai.core.files import atomic_write_text
from kfp_rai.core.report import html_page, html_table, status_cell, verdict_html
from kfp_rai.core.verdict import GateStatus, blocked_by

INDEX = "index.html"
_OUTCOME_LABEL = {
    "registered": "REGISTERED",
    "blocked": "BLOCKED",
    "failed": "PIPELINE FAILED",
    "checked": "CHECKED",
    "no_champion": "NOTHING TO COMPARE WITH",
}


def _status(value: str) -> GateStatus:
    try:
        return GateStatus(value)
    except ValueError:  # "skipped": the stage never ran, nothing was decided
        return GateStatus.NOT_JUDGED


def _links(artifacts: list[str]) -> str:
    shown = [a for a in artifacts if a.endswith((".html", ".md"))]
    return ", ".join(f'<a href="{html.escape(a)}">{html.escape(Path(a).name)}</a>' for a in shown) or "—"


def _reason(name: str, stage: dict[str, Any]) -> str:
    """A stage's reason in full, except production's when it only gathers the others': it names the
    gates that blocked the model, whose own reasons are in their rows (every one on the model card)."""
    blocked = [f["subject"] for f in stage.get("findings", []) if not _status(f["status"]).ok]
    if name == "production" and stage["status"] == GateStatus.FAILED.value and blocked:
        return blocked_by(blocked) + ": their reasons are in their own rows above, and on the model card"
    return str(stage["reason"])


def _stage_rows(stages: dict[str, Any], prefix: str = "") -> str:
    rows = []
    for name, stage in stages.items():
        cell = status_cell(_status(stage["status"]), "SKIPPED" if stage["status"] == "skipped" else None)
        rows.append(
            f'<tr class="stage" data-stage="{html.escape(prefix + name)}">'
            f"<td>{html.escape(prefix + name)}</td>{cell}<td>{html.escape(_reason(name, stage))}</td>"
            f"<td>{len(stage.get('findings', []))}</td><td>{_links(stage.get('artifacts', []))}</td></tr>"
        )
    return "".join(rows)


def outcome_status(record: dict[str, Any]) -> GateStatus:
    """The banner's colour: failed when the pipeline failed or the model was blocked; otherwise the
    most severe status of every stage that ran, the retrain's included, so a registered model with a
    detected drift is amber, and with drift that could not be judged grey, never green."""
    if record["outcome"] in ("failed", "blocked"):
        return GateStatus.FAILED
    if record["outcome"] == "no_champion":
        return GateStatus.NOT_JUDGED
    stages = list(record["stages"].values())
    stages += list(record["stages"]["refresh"].get("retrain", {}).get("stages", {}).values())
    return GateStatus.worst(_status(s["status"]) for s in stages if s["status"] != "skipped")


def render_index(record: dict[str, Any]) -> str:
    """The run's index page."""
    status = outcome_status(record)
    head = "<tr><th>stage</th><th>verdict</th><th>reason</th><th>findings</th><th>reports</th></tr>"
    body = [
        f"<h1>kfp-rai run: {html.escape(record['pipeline'])}</h1>",
        verdict_html(status, record["headline"], _OUTCOME_LABEL[record["outcome"]]),
        f'<table class="stages"><thead>{head}</thead><tbody>{_stage_rows(record["stages"])}</tbody></table>',
    ]
    retrain = record["stages"]["refresh"].get("retrain", {})
    if retrain.get("triggered") and record["pipeline"] != "refresh":  # a refresh run's stages are its challenger's
        body += [
            "<h2>The refresh's challenger (trained on the current data)</h2>",
            f'<table class="stages"><thead>{head}</thead><tbody>'
            f"{_stage_rows(retrain['stages'], 'retrain: ')}</tbody></table>",
        ]
    timing = [(t["stage"], t["label"], t["task"], f"{t['seconds']:.1f} s") for t in record.get("tasks", [])]
    body += [
        "<h2>Run</h2>",
        html_table(
            ("field", "value"),
            (
                ("status", record["status"]),
                ("started", record["started"]),
                ("finished", record["finished"]),
                ("kfp-rai", record["kfp_rai_version"]),
            ),
        ),
        '<p>Every finding of every stage: <a href="run.json">run.json</a>. '
        'Everything kfp.local printed: <a href="logs/kfp-local.log">logs/kfp-local.log</a>.</p>',
    ]
    if timing:
        body += ["<h2>Tasks</h2>", html_table(("stage", "task", "kfp task", "time"), timing)]
    return html_page(f"kfp-rai run: {record['pipeline']}", "\n".join(body))


def write_index(record: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / INDEX
    atomic_write_text(path, render_index(record))
    return path
