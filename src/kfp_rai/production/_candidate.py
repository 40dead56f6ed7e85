"""What the pipeline does at the end of production: check the registry before anything is
trained, register an eligible model as a ``candidate`` (its card naming its version, the
human-written files it was judged under stored with it), and say what a person does next; or
stop a blocked model with its reason. Pipelines never approve or promote."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from kfp_rai.core.model_dir import CARD_FILE, CARD_HTML_FILE, CARD_JSON_FILE
from kfp_rai.core.report import Subject
from kfp_rai.core.verdict import GateStatus, Verdict
from kfp_rai.errors import GateFailedError, InvalidParameterError, RAIError
from kfp_rai.production._governance import POLICY_FILE, read_state
from kfp_rai.production._model_card import ModelCard
from kfp_rai.production._registry import CardFiles, ModelRegistry, RegisteredModel, registration_verdict
from kfp_rai.production._state import CHALLENGER

PREDICTION_FILE = "prediction_reference.json"  # kfp_rai.refresh: the model's predictions at validation
SETTINGS_KEY = "run_settings"  # kfp_rai.refresh: how the run that trained it was set up

# The human-written files a version was judged under, stored and signed with it (a refresh judges
# the champion's successor under the same ones unless told otherwise).
HUMAN_FILES = {
    "policy": POLICY_FILE,
    "collection_plan": "collection_plan.yaml",
    "reference_population": "reference_population.yaml",
}


def open_registry(uri: str) -> ModelRegistry:
    """The registry at ``uri``, checked to be there and writable before anything is trained: an
    empty location, an unreachable store or a read-only one is refused with one line."""
    if not uri or not uri.strip():
        raise InvalidParameterError(
            "registry_uri is empty: give the registry every run registers into (a directory, or "
            "s3://bucket/prefix?endpoint_override=host:port&scheme=http for KFP's object store), so later runs and "
            "people find its versions"
        )
    try:
        registry = ModelRegistry(uri.strip())
        registry.probe()
    except (OSError, pa.ArrowException) as exc:
        raise InvalidParameterError(
            f"registry {uri} cannot be written: {' '.join(str(exc).split())[:300]} (check the location and the "
            "store's credentials)"
        ) from exc
    return registry


def check_registry(uri: str, name: str) -> str:
    """One line saying the registry is usable for ``name``: reachable, writable, and the model's
    history (if any) verified; raises otherwise (a tampered history stops the run here)."""
    registry = open_registry(uri)
    state = read_state(registry, name)
    production = state.aliases.get("production")
    return (
        f"registry {registry.uri} is writable; {name} has {len(state.versions)} registered version(s)"
        + (f", version {production} in production" if production else ", none in production yet")
        + f" ({len(state.events)} events verified)"
    )


def card_files(card_json: Mapping[str, Any]) -> CardFiles:
    """Render the candidate's card (its JSON) again for the version number the registry gives: the
    registered card names its version, never "version candidate"."""
    card = ModelCard.from_dict(card_json)
    subject = Subject.from_dict(card_json.get("subject") or {})

    def render(version: str) -> dict[str, bytes]:
        named = dataclasses.replace(subject, model_version=version)
        return {
            CARD_FILE: card.to_markdown(named).encode("utf-8"),
            CARD_HTML_FILE: card.to_html(named).encode("utf-8"),
            CARD_JSON_FILE: (json.dumps(card.to_dict(named), indent=2, sort_keys=True) + "\n").encode("utf-8"),
        }

    return render


def next_step(entry: RegisteredModel, registry: ModelRegistry, alias: str | None = None) -> str:
    """What a person does after a registration: review the card, then approve (or reject) and promote."""
    where = f" --registry '{registry.uri}'"
    role = "the challenger" if alias else "a candidate"
    return (
        f"{entry.name} version {entry.version} is {role}: nobody has approved it. Read its card (kfp-rai models show "
        f"{entry.name} {entry.version}{where} --html card.html), then kfp-rai models approve {entry.name} "
        f"{entry.version} --by WHO --note TEXT{where} (or reject), and kfp-rai models promote {entry.name} "
        f"{entry.version} --by WHO{where}"
    )


def register_candidate(
    registry: ModelRegistry,
    *,
    files: Mapping[str, bytes],
    meta: dict[str, Any],
    card_text: str,
    card_json: Mapping[str, Any],
    human_texts: Mapping[str, str],
    launched_by: str = "",
    run_id: str = "",
    settings: Mapping[str, Any] | None = None,
    predictions: bytes | None = None,
    alias: str | None = None,
) -> tuple[RegisteredModel, Verdict, str]:
    """Register an eligible model (its verified files and metadata) as a candidate; return the
    version, the production stage's verdict and the next step for a person.

    ``settings`` (where the training data came from, the sensitive attributes, the held-out share,
    pseudonymized columns, intended use) and ``predictions`` (the model's predictions at validation)
    are stored and signed with the version: a refresh judges it, and trains its challenger, from them.
    ``alias="challenger"`` registers a refresh's challenger under that alias.
    """
    from kfp_rai.core.model_dir import MODEL_FILE, REFERENCE_FILE

    if alias not in (None, CHALLENGER):
        raise InvalidParameterError(f"a pipeline registers a candidate or the challenger, never {alias!r}")
    verdict = Verdict.from_dict(card_json)
    extra = {k: v for k, v in files.items() if k == REFERENCE_FILE}
    extra.update({HUMAN_FILES[k]: text.encode("utf-8") for k, text in human_texts.items() if text.strip()})
    if predictions is not None:
        extra[PREDICTION_FILE] = predictions
    entry = registry.register(
        meta["name"],
        model=files[MODEL_FILE],
        model_card=card_text,
        metadata={**meta, "launched_by": launched_by, "run_id": run_id, SETTINGS_KEY: dict(settings or {})},
        verdict=verdict,  # signed into the version: serving refuses one whose gates did not pass
        extra=extra,
        card_files=card_files(card_json),
        launched_by=launched_by,
        run_id=run_id,
        alias=alias,
    )
    return entry, registration_verdict(verdict, entry), next_step(entry, registry, alias)


def blocked_verdict(status: str, reason: str, *, fail_run: bool) -> Verdict:
    """The blocked branch: the card's verdict, said once more where the run graph shows it; with
    ``fail_run`` the run fails (a team's choice, made when launching it)."""
    try:
        gate = GateStatus(status)
    except ValueError:
        gate = GateStatus.NOT_JUDGED
    if gate.ok:
        raise RAIError(
            f"the card says {status}: a model that may register is not blocked (check the pipeline's wiring)"
        )
    verdict = Verdict(gate, f"model blocked, nothing registered: {reason}")
    if fail_run:
        raise GateFailedError(f"{verdict.reason} (the run was launched with fail_when_blocked=true)")
    return verdict
