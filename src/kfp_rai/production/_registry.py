"""A versioned model registry on any pyarrow filesystem (a local directory, s3://...).

Layout: ``<root>/<name>/<version>/{model.skops, model_card.{md,html,json}, metadata.json, ...,
model.sig}`` with versions ``1, 2, ...``, each signed as a whole (see :class:`ModelRegistry`), and
``<root>/<name>/events/``, the model's signed, chained history (:mod:`._events`): a version exists
for people once its ``registered`` event is written; its state and the aliases come from the events
(:mod:`._state`), the decisions people take from :mod:`._governance`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from kfp_rai.core.clock import utc_now
from kfp_rai.core.files import sha256_bytes
from kfp_rai.core.model_dir import CARD_FILE, META_FILE, MODEL_FILE, fetch_version, metadata_bytes, read_model_files
from kfp_rai.core.signing import SIGNATURE_FILE, sign_files
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.errors import GateFailedError, IntegrityError, InvalidParameterError
from kfp_rai.production._claim import Contended, holding
from kfp_rai.production._events import EventLog, LostRace, list_dir
from kfp_rai.production._state import ModelState, apply, replay

CardFiles = Callable[[str], Mapping[str, bytes]]  # version number -> the card's files naming it
MAX_RETRIES = 100

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    uri: str
    sha256: str
    metadata: dict[str, Any]


def validate_model_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidParameterError(
            f"model name {name!r} is not valid: use lowercase letters, digits, '.', '_' or '-' (at most 63)"
        )
    return name


def check_registrable(card_metadata: dict[str, Any], model_sha256: str) -> None:
    """Refuse to register a model whose card is not eligible or describes another model.

    Registration enforces the gates itself, so a pipeline that forgets its ``dsl.If`` still fails
    closed.
    """
    if card_metadata.get("model_sha256") != model_sha256:
        raise IntegrityError("the model card describes a different model (sha256 mismatch): refusing to register")
    try:
        status = GateStatus(card_metadata.get("status"))
    except ValueError:
        status = GateStatus.NOT_JUDGED
    if card_metadata.get("eligible") is not True or not status.ok:
        raise GateFailedError(
            f"the model card says the model is blocked: {card_metadata.get('reason', 'no reason recorded')}"
        )


def registration_verdict(card: Verdict, entry: RegisteredModel) -> Verdict:
    """The production stage's verdict once a model is registered: the card's status (passed, or a
    warning when gates recorded warnings) and a finding naming the new version."""
    finding = Finding(
        "production.registered",
        f"{entry.name} version {entry.version}",
        GateStatus.PASSED,
        f"registered {entry.name} as version {entry.version} (sha256 {entry.sha256}) at {entry.uri}",
    )
    return Verdict(
        status=card.status,
        reason=f"registered as version {entry.version}; {card.reason}",
        findings=(*card.findings, finding),
    )


class ModelRegistry:
    """Versioned storage of models with their model card and lineage metadata, each version signed.

    A version directory (model, metadata, card) is written into a hidden staging directory, signed
    as a whole and then published: on a local disk by one atomic rename (a version is complete and
    signed, or absent); on an object store, which cannot rename, file by file with the signature
    last, so a version without one is never listed. A failed or interrupted registration never
    shows, and never reuses its number.

    Parameters
    ----------
    uri : str
        A local directory (created if missing) or a URI pyarrow understands (``s3://bucket/prefix``).
    """

    def __init__(self, uri: str) -> None:
        if not uri:
            raise InvalidParameterError("the registry needs a location: pass a directory or a URI")
        if "://" not in uri:
            uri = str(Path(uri).expanduser().resolve())
            Path(uri).mkdir(parents=True, exist_ok=True)
        self.uri = uri
        # s3://bucket/prefix?endpoint_override=host:port&scheme=http: the options stay on every URI
        self._base, _, self._query = uri.partition("?")
        try:
            self._fs, self._root = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidParameterError(
                f"registry {uri}: {exc}; give a directory or a URI pyarrow reads (s3://bucket/prefix, gs://, hdfs://)"
            ) from exc
        self._local = isinstance(self._fs, pafs.LocalFileSystem)

    def probe(self) -> None:
        """Write and delete a file at the root: raises (OSError, pyarrow's errors) when the store
        is unreachable or read-only."""
        probe = self._path(f".kfp-rai-probe-{uuid.uuid4().hex}")
        self._fs.create_dir(self._root, recursive=True)
        with self._fs.open_output_stream(probe) as out:
            out.write(b"probe")
        self._fs.delete_file(probe)

    def _path(self, *parts: str) -> str:
        return "/".join([self._root.rstrip("/"), *parts])

    def _numbers(self, name: str) -> list[int]:
        """Every numbered directory, complete or not, and every number claimed on an object store
        (:mod:`._claim`): a number once taken is never reused."""
        found = []
        for info in list_dir(self._fs, self._path(name)):
            if info.is_dir:
                found.append(info.name)
            elif info.name.startswith(".") and ".claim-" in info.name:
                found.append(info.name[1:].partition(".claim-")[0])
        return sorted({int(v) for v in found if v.isascii() and v.isdigit()})

    def _complete(self, name: str, version: str) -> bool:
        info = self._fs.get_file_info(self._path(name, version, SIGNATURE_FILE))
        return bool(info.type == pafs.FileType.File)

    def versions(self, name: str) -> list[str]:
        """Complete, signed versions of ``name``, oldest first."""
        return [str(n) for n in self._numbers(name) if self._complete(name, str(n))]

    def _read(self, name: str, version: str, filename: str) -> bytes:
        with self._fs.open_input_stream(self._path(name, version, filename)) as fh:
            return bytes(fh.read())

    def _same(self, name: str, model_sha256: str, card_source: str) -> RegisteredModel | None:
        """An existing version holding exactly this model and card (a re-run of a registration)."""
        for version in self.versions(name):
            try:
                meta = json.loads(self._read(name, version, META_FILE))
                registration = meta.get("registration") or {}
            except (OSError, ValueError, AttributeError):  # not a version kfp-rai wrote: never "the same"
                continue
            if meta.get("sha256") == model_sha256 and registration.get("card_source_sha256") == card_source:
                return RegisteredModel(name, version, self._uri(name, version), model_sha256, meta)
        return None

    def _uri(self, name: str, version: str) -> str:
        return f"{self._base.rstrip('/')}/{name}/{version}" + (f"?{self._query}" if self._query else "")

    def events(self, name: str) -> EventLog:
        """The event log of ``name`` (its signed, chained history)."""
        validate_model_name(name)
        return EventLog(self._fs, self._path(name), name, f"{name} in {self.uri}")

    def state(self, name: str) -> ModelState:
        """Every version's state and the aliases of ``name``, from its verified event log."""
        return replay(name, self.events(name).read())

    def models(self) -> list[str]:
        """Every model name with an event log or a version, sorted."""
        names = [i.name for i in list_dir(self._fs, self._root) if i.is_dir]
        return sorted(n for n in names if _NAME.match(n))

    def register(
        self,
        name: str,
        *,
        model: bytes,
        model_card: str,
        metadata: dict[str, Any],
        verdict: Verdict | None = None,
        extra: Mapping[str, bytes] | None = None,
        card_files: CardFiles | None = None,
        launched_by: str = "",
        run_id: str = "",
        alias: str | None = None,
    ) -> RegisteredModel:
        """Store ``model`` with its card as a new, signed version of ``name``, record its
        ``registered`` event (a ``candidate``; ``alias="challenger"`` also moves that alias) and
        return it.

        ``verdict`` is the card's (the production gate's): it is recorded, signed with the version,
        as ``metadata["registration"]`` with the card's sha256, and serving refuses a version whose
        record does not say its gates passed (or recorded accepted warnings). Without one the
        version is stored as not judged, and is not served. ``card_files`` renders the card for
        the version number the registry gives (so the stored card names it); without it
        ``model_card`` is stored as it is.

        Registering the same model with the same card again returns the version it already has
        (a retried task registers nothing twice, and completes a registration whose event an
        interruption left unwritten). ``extra`` files (the reference summary, the human-written
        files the model was judged under) are stored and signed with the version.
        """
        validate_model_name(name)
        sha = sha256_bytes(model)
        if metadata.get("sha256") and metadata["sha256"] != sha:
            raise IntegrityError("the model bytes do not match the sha256 recorded at training time")
        source = sha256_bytes(model_card.encode("utf-8"))
        entry = self._same(name, sha, source)
        if entry is None:
            entry = self._store(name, sha, model, model_card, metadata, verdict, extra, card_files, source)
        self._record_registration(entry, launched_by=launched_by, run_id=run_id, alias=alias)
        return entry

    def _store(
        self,
        name: str,
        sha: str,
        model: bytes,
        model_card: str,
        metadata: dict[str, Any],
        verdict: Verdict | None,
        extra: Mapping[str, bytes] | None,
        card_files: CardFiles | None,
        source: str,
    ) -> RegisteredModel:
        for _ in range(MAX_RETRIES):
            numbers = self._numbers(name)
            version = str(numbers[-1] + 1 if numbers else 1)
            cards = dict(card_files(version)) if card_files else {CARD_FILE: model_card.encode("utf-8")}
            registration = {
                "status": verdict.status.value if verdict else GateStatus.NOT_JUDGED.value,
                "eligible": bool(verdict and verdict.status.ok),
                "reason": verdict.reason if verdict else "registered without a gate verdict",
                "card_sha256": sha256_bytes(cards[CARD_FILE]),
                "card_source_sha256": source,
                "registered": utc_now(),
            }
            meta = {**metadata, "name": name, "version": version, "sha256": sha, "registration": registration}
            files = {
                **{k: v for k, v in (extra or {}).items() if k not in {MODEL_FILE, META_FILE, *cards}},
                **cards,
                MODEL_FILE: model,
                META_FILE: metadata_bytes(meta),
            }
            if self._publish(name, version, files):
                return RegisteredModel(name, version, self._uri(name, version), sha, meta)
        raise InvalidParameterError(f"could not register a new version of {name!r}: too many concurrent registrations")

    def _record_registration(self, entry: RegisteredModel, *, launched_by: str, run_id: str, alias: str | None) -> None:
        """Append the version's ``registered`` event unless the log has it (a retried task)."""
        log = self.events(entry.name)
        registration = entry.metadata.get("registration") or {}
        for _ in range(MAX_RETRIES):
            events = log.read()
            state = replay(entry.name, events)
            if entry.version in state.versions:
                recorded = state.versions[entry.version]
                if recorded.model_sha256 != entry.sha256:
                    other = recorded.model_sha256[:12]
                    raise IntegrityError(
                        f"version {entry.version} of {entry.name} is registered for another model ({other}...): two "
                        "registrations wrote it at once; register again"
                    )
                if recorded.state in ("rejected", "archived"):
                    raise InvalidParameterError(
                        f"this model was registered as version {entry.version} of {entry.name} and is "
                        f"{recorded.state}: nothing was registered"
                    )
                return
            event = log.draft(
                events,
                type="registered",
                version=entry.version,
                model_sha256=entry.sha256,
                by=launched_by or "a kfp-rai pipeline run (launcher not recorded)",
                time=str(registration.get("registered") or utc_now()),
                note=f"registered by a pipeline run; its card says {registration.get('status', 'not_judged')}",
                evidence={
                    "run_id": run_id,
                    "card": f"{entry.uri}/{CARD_FILE}",
                    "card_sha256": registration.get("card_sha256", ""),
                },
                details={
                    "gate_status": registration.get("status", GateStatus.NOT_JUDGED.value),
                    "eligible": registration.get("eligible") is True,
                    "launched_by": launched_by,
                    **({"alias": alias} if alias else {}),
                },
                person=False,
            )
            apply(state, event)
            try:
                log.append(event, person=False)
                return
            except LostRace:
                continue
        raise InvalidParameterError(f"could not record the registration of {entry.name}: the registry kept changing")

    def _publish(self, name: str, version: str, files: dict[str, bytes]) -> bool:
        """Sign and publish one version; False when another registration took the number.

        The signature covers the bytes in memory, the very bytes written. Locally the version is
        staged in a hidden directory and renamed into place (atomic); on an object store the
        signature is written last, marking the version complete.
        """
        signed = {**files, SIGNATURE_FILE: sign_files(files, f"{name} version {version}")}
        if not self._local:
            return self._publish_remote(name, version, signed)
        parent = Path(self._path(name))
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
        try:
            for filename, data in signed.items():
                (stage / filename).write_bytes(data)
            try:
                os.rename(stage, self._path(name, version))  # atomic; fails if the number is taken
            except OSError:
                return False
            return True
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _publish_remote(self, name: str, version: str, signed: dict[str, bytes]) -> bool:
        """An object store has no exclusive create through pyarrow: the writer holds the number
        alone through a claim (:mod:`._claim`), finds nothing under it, writes, and reads every
        file back, which must be exactly ours (a writer that does not claim, or one that outlived
        its lease, leaves a mixed directory that verifies for nobody, never registered: the number
        is skipped, the registration retried under the next one)."""
        prefix = self._path(name, version)
        try:
            with holding(self._fs, self._path(name), version):
                if self._fs.get_file_info(pafs.FileSelector(prefix, allow_not_found=True)):
                    return False
                self._fs.create_dir(prefix, recursive=True)
                for filename, data in signed.items():  # dicts keep order: the signature comes last
                    with self._fs.open_output_stream(self._path(name, version, filename)) as out:
                        out.write(data)
        except Contended:
            return False
        present = {i.base_name for i in self._fs.get_file_info(pafs.FileSelector(prefix)) if i.is_file}
        if present != set(signed):
            return False
        return all(self._read(name, version, filename) == data for filename, data in signed.items())

    def get(self, name: str, version: str) -> RegisteredModel:
        """Read a version's metadata after verifying its signature and its model file's hash."""
        return self.read(name, version)[0]

    def read(self, name: str, version: str) -> tuple[RegisteredModel, dict[str, bytes]]:
        """A version and its files (the signature left out), read once and verified."""
        if version not in self.versions(name):
            raise InvalidParameterError(f"no complete version {version!r} of model {name!r} in {self.uri}")
        with tempfile.TemporaryDirectory(prefix="kfp-rai-version-") as scratch:
            files, meta = read_model_files(fetch_version(self._uri(name, version), scratch))
        if meta.get("name") != name or str(meta.get("version")) != version:
            raise IntegrityError(
                f"{self._uri(name, version)} holds version {meta.get('version')} of {meta.get('name')!r} (its signed "
                "metadata says so): a version was copied into another's place; refusing it"
            )
        return RegisteredModel(name, version, self._uri(name, version), meta["sha256"], meta), files
