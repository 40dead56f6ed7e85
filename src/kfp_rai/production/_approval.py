"""What lets a version serve: the signed event a person approved or promoted it with, found in the
registry's log (``kfp-rai serve --registry``), or handed to a server that cannot read the registry
(an InferenceService's ``KFP_RAI_APPROVAL_EVENT``) and checked against the model it loaded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.production._events import Event
from kfp_rai.production._governance import read_state, verified_version
from kfp_rai.production._inference_service import APPROVAL_EVENT_ENV
from kfp_rai.production._registry import ModelRegistry
from kfp_rai.production._state import PRODUCTION, ModelState

AUTHORIZING = ("approved", "promoted", "rolled_back")


def authorizing_event(state: ModelState, version: str) -> Event | None:
    """The event that lets ``version`` serve: its latest promotion or rollback while it is
    production (an approval waived in writing included), else its approval; None when nobody
    approved it, or it was rejected or archived since."""
    record = state.versions.get(version)
    if record is None or record.state in ("rejected", "archived"):
        return None
    wanted = ("promoted", "rolled_back") if state.aliases.get(PRODUCTION) == version else ("approved",)
    return next((e for e in reversed(state.events) if e.version == version and e.type in wanted), None)


def registry_of(version_uri: str) -> tuple[ModelRegistry, str, str] | None:
    """The registry, model name and version a version's URI sits in (``<registry>/<name>/<n>``),
    if it is one (it has an event log); None otherwise (a copy, e.g. KServe's /mnt/models)."""
    from kfp_rai.production._events import EVENTS_DIR

    base, _, query = version_uri.partition("?")
    if "://" not in base:  # `registry/m/./2`, a link to a version: the place it really is decides
        base = str(Path(base).resolve())
    parts = base.rstrip("/").rsplit("/", 2)
    if len(parts) != 3 or not (parts[2].isascii() and parts[2].isdigit()) or not parts[0]:
        return None
    root, name, version = parts
    root = f"{root}?{query}" if query else root
    if "://" not in version_uri:
        if not (Path(root) / name / EVENTS_DIR).is_dir():
            return None
    elif not base.split("://", 1)[1]:
        return None
    try:
        registry = ModelRegistry(root)
        if not registry.events(name).exists():
            return None
    except InvalidParameterError:
        return None
    return registry, name, version


def check_approval_event(data: bytes, meta: Mapping[str, Any]) -> Event:
    """A signed promotion (or rollback) event given to a server that cannot read the registry (an
    InferenceService): it must be signed with the decision key and name this very model (name,
    version and sha256). Deployment follows production, so an approval alone does not do."""
    from kfp_rai.production._events import decode_event

    event = decode_event(data, f"the approval event in {APPROVAL_EVENT_ENV}")
    if (
        event.type not in ("promoted", "rolled_back")
        or event.model != meta.get("name")
        or event.version != str(meta.get("version"))
        or event.model_sha256 != meta.get("sha256")
    ):
        raise IntegrityError(
            f"the event in {APPROVAL_EVENT_ENV} ({event.type} {event.model} version {event.version}) does not approve "
            f"the model being served ({meta.get('name')} version {meta.get('version')}): refusing it"
        )
    return event


@dataclass(frozen=True)
class Servable:
    """A version to serve or deploy, and the signed event that lets it (None: nobody approved it)."""

    uri: str
    approval: Event | None = None
    signed_approval: str | None = None  # the event's file, base64: for an InferenceService's environment
    in_registry: bool = False  # judged by a registry's log (else: a copy, judged by a signed event given to it)


def servable_version(
    *, model_uri: str | None = None, registry: str | None = None, name: str | None = None, ref: str | None = None
) -> Servable:
    """Resolve what to serve: ``registry``/``name`` with ``ref`` (an alias, default production,
    or a version number) through the verified event log; a ``model_uri`` inside a registry is
    judged by that registry's log; any other copy has no approval here (an InferenceService's
    server reads its signed approval from :data:`APPROVAL_EVENT_ENV`)."""
    import base64

    if model_uri and name:
        raise InvalidParameterError("give --model-uri, or --registry with --model, not both")
    if not model_uri and not name:
        raise InvalidParameterError(
            "say what to serve: --registry DIR --model NAME [--alias production], or --model-uri URI"
        )
    if name:
        where = registry or "registry"
        if "://" not in where and not Path(where).is_dir():
            raise InvalidParameterError(f"--registry {where}: no registry there")
        located, model, wanted = ModelRegistry(where), name, ref or PRODUCTION
    else:
        if ref or registry:
            raise InvalidParameterError("--alias, --version and --registry go with --model, not with --model-uri")
        found = registry_of(str(model_uri))
        if found is None:
            return Servable(str(model_uri))
        located, model, wanted = found
    state = read_state(located, model, remember=True)  # a log cut at its end is refused where it was read before
    record = state.resolve(wanted)
    entry, _ = verified_version(located, record, model)  # and it sits where its signed metadata says
    event = authorizing_event(state, record.version)
    signed = None if event is None else base64.b64encode(located.events(model).raw(event)).decode("ascii")
    return Servable(entry.uri, event, signed, in_registry=True)
