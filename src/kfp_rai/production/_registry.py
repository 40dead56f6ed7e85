"""A versioned model registry on any pyarrow filesystem (a local directory, s3://...).

Layout: ``<root>/<name>/<version>/{model.skops, model_card.md, metadata.json}`` with versions
``1, 2, ...``. ``metadata.json`` is written last and marks a version complete; readers never list
an incomplete one. (No directory rename: object stores such as S3 cannot move directories.)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from kfp_rai.core.files import sha256_bytes
from kfp_rai.core.model_dir import CARD_FILE, META_FILE, MODEL_FILE
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.errors import GateFailedError, IntegrityError, InvalidParameterError

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
    """Versioned storage of models with their model card and lineage metadata.

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
        self._fs, self._root = pafs.FileSystem.from_uri(uri)
        self._local = isinstance(self._fs, pafs.LocalFileSystem)

    def _path(self, *parts: str) -> str:
        return "/".join([self._root.rstrip("/"), *parts])

    def _numbers(self, name: str) -> list[int]:
        selector = pafs.FileSelector(self._path(name), allow_not_found=True)
        found = [info.base_name for info in self._fs.get_file_info(selector) if info.type == pafs.FileType.Directory]
        return sorted(int(v) for v in found if v.isdigit())

    def versions(self, name: str) -> list[str]:
        """Complete versions of ``name`` (their metadata.json, written last, exists), oldest first."""
        return [
            str(n)
            for n in self._numbers(name)
            if self._fs.get_file_info(self._path(name, str(n), META_FILE)).type == pafs.FileType.File
        ]

    def _claim(self, name: str) -> str:
        """Reserve the next version number. On a local disk ``mkdir`` is exclusive, so two parallel
        registrations get different numbers; object stores have no such primitive (see README)."""
        for _ in range(100):
            numbers = self._numbers(name)
            version = str(numbers[-1] + 1 if numbers else 1)
            if self._local:
                try:
                    Path(self._path(name, version)).mkdir(parents=True, exist_ok=False)
                except FileExistsError:
                    continue
            else:
                self._fs.create_dir(self._path(name, version), recursive=True)
            return version
        raise InvalidParameterError(f"could not reserve a new version of {name!r}: too many concurrent registrations")

    def register(self, name: str, *, model: bytes, model_card: str, metadata: dict[str, Any]) -> RegisteredModel:
        """Store a new version of ``name`` and return it.

        Files are written into the reserved version directory with ``metadata.json`` last: a version
        is listed only once it is complete, and a failed write never reuses its number.
        """
        validate_model_name(name)
        sha = sha256_bytes(model)
        if metadata.get("sha256") and metadata["sha256"] != sha:
            raise IntegrityError("the model bytes do not match the sha256 recorded at training time")
        version = self._claim(name)
        meta = {**metadata, "name": name, "version": version, "sha256": sha}
        for filename, data in (
            (MODEL_FILE, model),
            (CARD_FILE, model_card.encode("utf-8")),
            (META_FILE, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")),
        ):
            with self._fs.open_output_stream(self._path(name, version, filename)) as out:
                out.write(data)
        return RegisteredModel(
            name=name, version=version, uri=f"{self.uri.rstrip('/')}/{name}/{version}", sha256=sha, metadata=meta
        )

    def get(self, name: str, version: str) -> RegisteredModel:
        """Read a version's metadata (verifying its model file's hash)."""
        path = self._path(name, version)
        if self._fs.get_file_info(path).type != pafs.FileType.Directory:
            raise InvalidParameterError(f"no version {version!r} of model {name!r} in {self.uri}")
        with self._fs.open_input_stream(f"{path}/{META_FILE}") as fh:
            meta = json.loads(fh.read())
        with self._fs.open_input_stream(f"{path}/{MODEL_FILE}") as fh:
            actual = sha256_bytes(fh.read())
        if actual != meta["sha256"]:
            raise IntegrityError(f"{name} version {version}: model file hash does not match its metadata")
        return RegisteredModel(
            name=name, version=version, uri=f"{self.uri.rstrip('/')}/{name}/{version}", sha256=actual, metadata=meta
        )
