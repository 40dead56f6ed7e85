"""A registered version's card as a person reads it later: the card as signed at registration,
with the approvals and deployment history drawn from the model's events beside the gates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kfp_rai.core.report import Section, Subject, Table, render_html
from kfp_rai.production._events import Event
from kfp_rai.production._model_card import ModelCard

_WHAT = {
    "registered": "registered as a candidate",
    "approved": "approved",
    "rejected": "rejected",
    "promoted": "promoted to production",
    "rolled_back": "production rolled back to it",
    "archived": "archived",
    "deployed": "deployed",
}


def history_section(events: Sequence[Event]) -> Section:
    """Every event of one version, oldest first: who, when, what and why, and what it rests on."""
    rows = []
    for e in events:
        detail = "; ".join(
            part
            for part in (
                f"production was {e.details['previous']}" if e.details.get("previous") else "",
                f"approval waived: {e.details['waiver']}" if e.details.get("waiver") else "",
                f"separation of duties waived: {e.details['separation_of_duties_waived']}"
                if e.details.get("separation_of_duties_waived")
                else "",
                f"{'applied' if e.details.get('applied') else 'manifest written'}: {e.details.get('target')}"
                if e.type == "deployed"
                else "",
                f"run {e.evidence['run_id']}" if e.evidence.get("run_id") else "",
                f"gates {e.details['gate_status']}" if e.details.get("gate_status") else "",
            )
            if part
        )
        rows.append((e.seq, e.time, _WHAT.get(e.type, e.type), e.by, e.note or "—", detail or "—", e.digest[:16]))
    intro = (
        "What people decided after registration, from the model's event log in the registry (each event signed "
        "with the registry's key and chained to the one before; `kfp-rai models verify` checks them). The card "
        "below is the one signed at registration; the gates' verdict above is its own."
    )
    table = Table(("#", "time (UTC)", "event", "by", "note", "details", "event sha256"), tuple(rows))
    return Section("Approvals and deployment history", (intro, table))


def card_with_history(card: Mapping[str, Any], events: Sequence[Event], meta: Mapping[str, Any]) -> str:
    """The registered card (its JSON, as stored with the version) as one HTML page, with its
    version's history first after the verdict."""
    model_card = ModelCard.from_dict(card)
    subject = Subject.from_dict(card.get("subject") or {})
    if subject.model_version is None:
        subject = Subject(model_name=meta.get("name"), model_version=str(meta.get("version")))
    return render_html(
        f"{model_card.title}: {meta.get('name')} version {meta.get('version')}",
        model_card.verdict,
        [history_section(events), *model_card.sections()],
        subject,
        model_card.verdict_label(),
    )
