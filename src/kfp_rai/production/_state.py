"""What a model's event log means: every version's state and the aliases, derived by replaying the
events under the registry's rules (never stored twice, so nothing can disagree with the log).

States: ``candidate`` (registered, nobody decided yet), ``approved``, ``rejected``, ``archived``.
Aliases: ``production`` (what is served) and ``challenger`` (a retrained candidate waiting for a
decision), one version each, moved only by events. The same rules judge a decision before it is
written (:func:`apply`, raising :class:`RuleBroken`) and every event when the log is read back,
so a signed log that breaks them is refused as well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.production._events import Event

STATES = ("candidate", "approved", "rejected", "archived")
ALIASES = ("production", "challenger")
PRODUCTION, CHALLENGER = ALIASES


class RuleBroken(InvalidParameterError):
    """A decision the registry's rules do not allow (the message says which rule and what to do)."""


@dataclass(frozen=True)
class VersionRecord:
    """One version as the log describes it."""

    version: str
    model_sha256: str
    registered: str
    gate_status: str
    eligible: bool
    launched_by: str = ""
    run_id: str = ""
    state: str = "candidate"
    approved_by: str = ""
    approved: str = ""
    decided_by: str = ""
    note: str = ""
    waiver: str = ""  # the written reason a promotion went without approval

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelState:
    """A model's versions and aliases after its events, oldest event first."""

    name: str
    versions: Mapping[str, VersionRecord] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    production_history: tuple[str, ...] = ()  # every version production pointed to, in order
    production_stack: tuple[str, ...] = ()  # promotions push, rollbacks pop: what a rollback returns to
    events: tuple[Event, ...] = ()

    def aliases_of(self, version: str) -> tuple[str, ...]:
        return tuple(alias for alias in ALIASES if self.aliases.get(alias) == version)

    def resolve(self, ref: str) -> VersionRecord:
        """A version by number or by alias (``production``, ``challenger``)."""
        if ref in ALIASES:
            if ref not in self.aliases:
                raise InvalidParameterError(
                    f"no version of {self.name} is {ref} yet"
                    + (f": approve one, then `kfp-rai models promote {self.name} VERSION`" if ref == PRODUCTION else "")
                )
            ref = self.aliases[ref]
        if ref not in self.versions:
            known = ", ".join(self.versions) or "none"
            raise InvalidParameterError(f"{self.name} has no version {ref!r} (registered: {known})")
        return self.versions[ref]

    def previous_production(self) -> str | None:
        """The version production pointed to before the current one was promoted (a rollback undoes
        the latest promotion, a second rollback the one before), skipping any rejected or archived
        since; None when there is none."""
        for version in reversed(self.production_stack[:-1]):
            if self.versions[version].state not in ("rejected", "archived"):
                return version
        return None

    def history_of(self, version: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.version == version)


def _replace(record: VersionRecord, **changes: Any) -> VersionRecord:
    return dataclasses.replace(record, **changes)


def _existing(state: ModelState, event: Event) -> VersionRecord:
    record = state.versions.get(event.version)
    if record is None:
        raise RuleBroken(f"{state.name} has no version {event.version!r}")
    if record.model_sha256 != event.model_sha256:
        raise RuleBroken(f"the event names another model file than version {event.version} of {state.name}")
    return record


def _servable(state: ModelState, record: VersionRecord, event: Event) -> None:
    """Only an eligible version that a person approved (or whose promotion carries a written
    waiver) may take the production alias; rejected and archived versions never."""
    verb = "promoted" if event.type == "promoted" else "rolled back to"
    if record.state in ("rejected", "archived"):
        raise RuleBroken(f"version {record.version} of {state.name} is {record.state}: it can never be {verb}")
    if not record.eligible:
        raise RuleBroken(
            f"version {record.version} of {state.name} is not eligible (its card says {record.gate_status}): it "
            f"cannot be {verb}"
        )
    waived = bool(str(event.details.get("waiver", "")).strip())
    if record.state != "approved" and not waived and record.version not in state.production_history:
        raise RuleBroken(
            f"version {record.version} of {state.name} is not approved: a person approves it first "
            f"(`kfp-rai models approve {state.name} {record.version} --by WHO --note TEXT`)"
        )


def apply(state: ModelState, event: Event) -> ModelState:  # noqa: C901 - one rule per event type, in one place
    """The state after ``event``, or :class:`RuleBroken` naming the rule it breaks."""
    versions = dict(state.versions)
    aliases = dict(state.aliases)
    history, stack = state.production_history, state.production_stack
    kind = event.type
    if kind == "registered":
        if event.version in versions:
            raise RuleBroken(f"version {event.version} of {state.name} is registered already")
        details = event.details
        versions[event.version] = VersionRecord(
            version=event.version,
            model_sha256=event.model_sha256,
            registered=event.time,
            gate_status=str(details.get("gate_status", "not_judged")),
            eligible=details.get("eligible") is True,
            launched_by=str(details.get("launched_by", "")),
            run_id=str(event.evidence.get("run_id", "")),
        )
        if details.get("alias") == CHALLENGER:
            aliases[CHALLENGER] = event.version
    else:
        record = _existing(state, event)
        in_production = aliases.get(PRODUCTION) == event.version
        if kind == "approved":
            if record.state != "candidate":
                raise RuleBroken(f"version {event.version} of {state.name} is {record.state}, not a candidate")
            if not record.eligible:
                raise RuleBroken(
                    f"version {event.version} of {state.name} is not eligible (its card says {record.gate_status}): "
                    "nobody can approve what the gates blocked"
                )
            by, when = event.by, event.time
            versions[event.version] = _replace(
                record, state="approved", approved_by=by, approved=when, decided_by=by, note=event.note
            )
        elif kind in ("rejected", "archived"):
            target = kind
            if record.state in ("rejected", "archived"):  # both are final
                raise RuleBroken(f"version {event.version} of {state.name} is {record.state} already")
            if in_production:
                raise RuleBroken(
                    f"version {event.version} of {state.name} is in production: roll back or promote another "
                    f"version first (`kfp-rai models rollback {state.name} --by WHO --note TEXT`)"
                )
            versions[event.version] = _replace(record, state=target, decided_by=event.by, note=event.note)
            if aliases.get(CHALLENGER) == event.version:
                del aliases[CHALLENGER]
        elif kind in ("promoted", "rolled_back"):
            if in_production:
                raise RuleBroken(f"version {event.version} of {state.name} is in production already")
            if event.details.get("previous") != aliases.get(PRODUCTION):
                raise RuleBroken(f"the event moves production from another version than {state.name}'s current one")
            if kind == "rolled_back" and PRODUCTION not in aliases:
                raise RuleBroken(f"nothing of {state.name} is in production: there is nothing to roll back")
            _servable(state, record, event)
            aliases[PRODUCTION] = event.version
            if aliases.get(CHALLENGER) == event.version:
                del aliases[CHALLENGER]
            history = (*history, event.version)
            if kind == "promoted":
                stack = (*stack, event.version)
            elif event.version in stack[:-1]:  # back to where it was: what came after it is undone
                below = stack[:-1]
                stack = below[: len(below) - below[::-1].index(event.version)]
            else:  # to a version production never pointed to since: like a promotion of it
                stack = (*stack, event.version)
            if event.details.get("waiver") and record.state != "approved":
                versions[event.version] = _replace(record, waiver=str(event.details["waiver"]))
        elif kind == "deployed" and not in_production:
            raise RuleBroken(f"only the production version of {state.name} is deployed; {event.version} is not")
    return ModelState(state.name, versions, aliases, history, stack, (*state.events, event))


def replay(name: str, events: tuple[Event, ...]) -> ModelState:
    """The state after every event of a verified log; a log that breaks a rule is refused."""
    state = ModelState(name)
    for event in events:
        try:
            state = apply(state, event)
        except RuleBroken as exc:
            raise IntegrityError(
                f"event {event.seq} of {name} ({event.type} version {event.version}) breaks the registry's rules: "
                f"{exc}; refusing the log"
            ) from exc
    return state
