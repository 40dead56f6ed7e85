"""A person's decisions about a registered model: approve, reject, promote, roll back, archive, and
the record of a deployment.

Every decision reads and verifies the model's event log (and the version it acts on: its
signature, its model file, that it sits where its metadata says), is judged by the registry's
rules (:mod:`._state`) and the promotion policy, and is appended as the next signed event. When
another writer appends first, the decision is judged again on the new log (it may then be
refused: two people approving one version leave one approval). Pipelines never call
:func:`promote` or :func:`rollback`: moving ``production`` is a person's act.
"""

from __future__ import annotations

import contextlib
import json
import os
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_rai.core.clock import utc_now
from kfp_rai.core.files import atomic_write_text, sha256_bytes
from kfp_rai.core.state import safe_state_dir
from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.policy import Policy
from kfp_rai.production._events import Event, LostRace
from kfp_rai.production._registry import ModelRegistry, RegisteredModel
from kfp_rai.production._state import PRODUCTION, ModelState, RuleBroken, VersionRecord, apply, replay

POLICY_FILE = "policy.yaml"  # the policy a version was judged under, stored and signed with it
MAX_TRIES = 50  # each lost race means another decision landed: many writers at once take turns
_HEADS = "registry-heads.json"


@dataclass(frozen=True)
class Decision:
    """What a person asks: the event's fields other than the log's own (sequence, link, time)."""

    type: str
    version: str
    model_sha256: str
    by: str
    note: str = ""
    evidence: Mapping[str, str] | None = None
    details: Mapping[str, Any] | None = None
    person: bool = True  # a pipeline records only deployments


def _same_person(a: str, b: str) -> bool:
    """Names compared as people read them: compatibility forms (full-width letters), case and
    spacing do not make another person."""

    def norm(text: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", text).casefold().split())

    return norm(a) == norm(b)


def read_state(registry: ModelRegistry, name: str, *, remember: bool = False) -> ModelState:
    """The verified state of ``name``. With ``remember`` (the governance commands), the log is
    also checked against the longest one this user has read from this registry before: a log
    cut at its end, or rewritten with the key, is refused (see docs/governance.md)."""
    state = replay(name, registry.events(name).read())
    if remember:
        _check_head(registry, state)
    return state


def _heads_file() -> Path:
    try:
        return safe_state_dir() / _HEADS
    except (OSError, InvalidParameterError):  # no state directory of one's own: nothing to compare with
        return Path(os.devnull)


def _head_key(registry: ModelRegistry, name: str) -> str:
    """One key per model, however its registry is spelled (a relative path, file://, a trailing /)."""
    uri = registry.uri
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" not in uri:
        uri = str(Path(uri).resolve())
    return f"{uri.rstrip('/')}/{name}"


def _check_head(registry: ModelRegistry, state: ModelState) -> None:
    """Trust on first use, as TUF clients keep the last snapshot: the head last seen is kept in
    the user's state directory and must still be in the log, at the same place. A state directory
    this user cannot write still checks what it holds."""
    path = _heads_file()
    key = _head_key(registry, state.name)
    try:
        heads = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{path} (the registry heads this user has read) is not readable JSON: {exc}") from exc
    if not isinstance(heads, dict):
        raise IntegrityError(f"{path} (the registry heads this user has read) is not a mapping: fix or remove it")
    seen = heads.get(key)
    if isinstance(seen, dict) and isinstance(seen.get("seq"), int) and seen["seq"] > 0:
        have = state.events[seen["seq"] - 1] if len(state.events) >= seen["seq"] else None
        if have is None or have.digest != seen.get("digest"):
            raise IntegrityError(
                f"the event log of {state.name} in {registry.uri} no longer holds event {seen['seq']} as this user "
                f"last read it ({'the log was cut' if have is None else 'it was rewritten'}): refusing it; restore the "
                f"log from a backup, or, if the registry was replaced on purpose, remove {key!r} from {path}"
            )
    if state.events and (not isinstance(seen, dict) or seen.get("seq", 0) < len(state.events)):
        heads[key] = {"seq": len(state.events), "digest": state.events[-1].digest}
        with contextlib.suppress(OSError):  # read-only state: the check above still held
            atomic_write_text(path, json.dumps(heads, indent=2, sort_keys=True) + "\n")


def decide(registry: ModelRegistry, name: str, ask: Callable[[ModelState], Decision]) -> Event:
    """Judge ``ask``'s decision on the current log and append it; judged again if another writer
    appended first. ``ask`` raises :class:`RuleBroken` (one line) when it may not be taken."""
    log = registry.events(name)
    lost: LostRace | None = None
    for _ in range(MAX_TRIES):
        state = read_state(registry, name, remember=True)
        decision = ask(state)
        event = log.draft(
            state.events,
            type=decision.type,
            version=decision.version,
            model_sha256=decision.model_sha256,
            by=decision.by,
            time=utc_now(),
            note=decision.note,
            evidence=decision.evidence,
            details=decision.details,
            person=decision.person,
        )
        apply(state, event)
        try:
            written = log.append(event, person=decision.person)
        except LostRace as exc:
            lost = exc
            continue
        read_state(registry, name, remember=True)  # record the new head
        return written
    if lost is not None and lost.__cause__ is not None:  # held off by a claim, not outrun by decisions
        raise InvalidParameterError(f"the event log of {name} could not be written: {lost.__cause__}; try again")
    raise InvalidParameterError(f"the event log of {name} kept changing while deciding: try again")


def verified_version(
    registry: ModelRegistry, record: VersionRecord, name: str
) -> tuple[RegisteredModel, dict[str, bytes]]:
    """The version's directory, verified, and checked to hold the model its events name."""
    entry, files = registry.read(name, record.version)
    if entry.sha256 != record.model_sha256:
        raise IntegrityError(
            f"version {record.version} of {name} holds model {entry.sha256[:12]}... but its registration event names "
            f"{record.model_sha256[:12]}...: refusing it"
        )
    return entry, files


def version_policy(files: Mapping[str, bytes]) -> tuple[Policy, str]:
    """The policy a version was judged under (stored with it; the defaults when none was given)."""
    text = files.get(POLICY_FILE, b"").decode("utf-8")
    return Policy.from_yaml(text), sha256_bytes(text.encode("utf-8"))


def _evidence(entry: RegisteredModel, files: Mapping[str, bytes]) -> dict[str, str]:
    from kfp_rai.core.model_dir import CARD_FILE

    return {"card": f"{entry.uri}/{CARD_FILE}", "card_sha256": sha256_bytes(files.get(CARD_FILE, b""))}


def approve(
    registry: ModelRegistry, name: str, version: str, *, by: str, note: str, policy: Policy | None = None
) -> Event:
    """Record a person's approval of a candidate (separation of duties per the policy)."""
    if not note.strip():
        raise InvalidParameterError("an approval says why: --note TEXT")

    def ask(state: ModelState) -> Decision:
        record = state.resolve(version)
        entry, files = verified_version(registry, record, name)
        rules, policy_sha = (policy, policy.sha256) if policy else version_policy(files)
        details: dict[str, Any] = {"policy_sha256": policy_sha}
        if rules.promotion.separation_of_duties:
            if not record.launched_by:
                raise RuleBroken(
                    f"the run that trained version {record.version} of {name} recorded no launcher, so separation of "
                    "duties cannot be checked: relax it in the policy (promotion.separation_of_duties: false with an "
                    "exception_reason) or register the model again from a run that records who launched it"
                )
            if _same_person(by, record.launched_by):
                raise RuleBroken(
                    f"{record.launched_by} launched the run that trained version {record.version} of {name} (and "
                    f"--by names {by!r}): separation of duties asks someone else to approve it"
                )
        else:
            details["separation_of_duties_waived"] = rules.promotion.exception_reason
        return Decision("approved", record.version, record.model_sha256, by, note, _evidence(entry, files), details)

    return decide(registry, name, ask)


def reject(registry: ModelRegistry, name: str, version: str, *, by: str, note: str) -> Event:
    """Record a person's rejection: the version can never be promoted."""
    if not note.strip():
        raise InvalidParameterError("a rejection says why: --note TEXT")

    def ask(state: ModelState) -> Decision:
        record = state.resolve(version)
        entry, files = verified_version(registry, record, name)
        return Decision("rejected", record.version, record.model_sha256, by, note, _evidence(entry, files))

    return decide(registry, name, ask)


def archive(registry: ModelRegistry, name: str, version: str, *, by: str, note: str) -> Event:
    """Retire a version that is not in production: it can never be promoted again."""
    if not note.strip():
        raise InvalidParameterError("archiving says why: --note TEXT")

    def ask(state: ModelState) -> Decision:
        record = state.resolve(version)
        return Decision("archived", record.version, record.model_sha256, by, note)

    return decide(registry, name, ask)


def promote(
    registry: ModelRegistry, name: str, version: str, *, by: str, note: str = "", policy: Policy | None = None
) -> Event:
    """Move ``production`` to an approved, eligible version (or, if the policy waives approval
    with a written reason, to an eligible candidate; the reason is recorded on the event)."""

    def ask(state: ModelState) -> Decision:
        record = state.resolve(version)
        entry, files = verified_version(registry, record, name)
        rules, policy_sha = (policy, policy.sha256) if policy else version_policy(files)
        details: dict[str, Any] = {"previous": state.aliases.get(PRODUCTION), "policy_sha256": policy_sha}
        if record.state == "candidate" and not rules.promotion.require_approval:
            details["waiver"] = rules.promotion.exception_reason
        return Decision("promoted", record.version, record.model_sha256, by, note, _evidence(entry, files), details)

    return decide(registry, name, ask)


def rollback(registry: ModelRegistry, name: str, *, by: str, note: str, to: str | None = None) -> Event:
    """Move ``production`` back: to ``to``, or to the latest earlier production version that may
    still serve."""
    if not note.strip():
        raise InvalidParameterError("a rollback says why: --note TEXT")

    def ask(state: ModelState) -> Decision:
        if PRODUCTION not in state.aliases:
            raise RuleBroken(f"nothing of {name} is in production: there is nothing to roll back")
        target = to or state.previous_production()
        if target is None:
            raise RuleBroken(
                f"{name} has no earlier production version that may serve again: name one with --to VERSION"
            )
        record = state.resolve(target)
        entry, files = verified_version(registry, record, name)
        details = {"previous": state.aliases[PRODUCTION]}
        return Decision("rolled_back", record.version, record.model_sha256, by, note, _evidence(entry, files), details)

    return decide(registry, name, ask)


def record_deployment(
    registry: ModelRegistry,
    name: str,
    *,
    by: str,
    target: str,
    applied: bool,
    manifest_sha256: str,
    person: bool = True,
) -> Event:
    """Record that the production version's InferenceService was applied (or rendered to a file),
    signed with the decision key by a person, with the model key by a pipeline's deploy step."""

    def ask(state: ModelState) -> Decision:
        record = state.resolve(PRODUCTION)
        details = {"target": target, "applied": applied, "manifest_sha256": manifest_sha256}
        return Decision("deployed", record.version, record.model_sha256, by, details=details, person=person)

    return decide(registry, name, ask)
