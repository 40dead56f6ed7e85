"""`kfp-rai models verify`: the whole registry checked the way an auditor would, problem by problem."""

from __future__ import annotations

from typing import Any

from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.production._governance import read_state, verified_version
from kfp_rai.production._registry import ModelRegistry
from kfp_rai.production._state import CHALLENGER, PRODUCTION


def verify_registry(registry: ModelRegistry, names: list[str] | None = None) -> dict[str, list[str]]:
    """Every event's signature, link and rule, every registered version's signature and model
    file, and that each version holds the model its events name; one line per finding.

    Returns ``{"checked": [...], "notes": [...], "problems": [...]}``: a problem is anything
    that would make a command refuse; a note is a numbered directory no ``registered`` event names
    (an interrupted registration, which registering the same model again completes, or debris that
    verifies for no one): it is no version anyone can approve or serve.
    """
    out: dict[str, list[str]] = {"checked": [], "notes": [], "problems": []}
    for name in names if names is not None else registry.models():
        try:
            _verify_model(registry, name, out)
        except (IntegrityError, InvalidParameterError, OSError) as exc:
            out["problems"].append(str(exc) if not isinstance(exc, OSError) else f"{name}: {exc}")
    return out


def _verify_model(registry: ModelRegistry, name: str, out: dict[str, list[str]]) -> None:
    """One model's checks, appended to ``out``."""
    state = read_state(registry, name, remember=True)
    stored = registry.versions(name)
    verified = 0
    for version, record in state.versions.items():
        if version not in stored:
            out["problems"].append(f"version {version} of {name} is registered but its directory is missing")
            continue
        try:
            verified_version(registry, record, name)
            verified += 1
        except IntegrityError as exc:
            out["problems"].append(str(exc))
    for version in stored:
        if version not in state.versions:
            try:
                registry.read(name, version)
            except IntegrityError as exc:
                out["notes"].append(
                    f"{name}/{version} is no registered version and does not verify (debris of registrations that "
                    f"raced on an object store, or a directory someone put there; nothing serves it): {exc}"
                )
                continue
            out["notes"].append(
                f"version {version} of {name} is stored and signed but has no registered event (an interrupted "
                "registration; it is not a version anyone can approve or serve)"
            )
    aliases: dict[str, Any] = {a: state.aliases.get(a, "none") for a in (PRODUCTION, CHALLENGER)}
    out["checked"].append(
        f"{name}: {len(state.events)} events verified (signature, link, rules), {verified} of "
        f"{len(state.versions)} versions verified; production {aliases[PRODUCTION]}, challenger "
        f"{aliases[CHALLENGER]}"
    )
