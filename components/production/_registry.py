"""A versioned model registry on any pyarrow filesystem (a local directory, s3://...).

Layout: ``<root>/<name>/<version>/{model.skops, model_card.md, metadata.json}`` with versions
``1, 2, ...``. A version is written under a temporary name and renamed into place, so a reader
never sees half a version; its files are never rewritten afterwards.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.io import sha256_bytes

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
MODEL_FILE = "model.skops"
CARD_FILE = "model_card.md"
META_FILE = "metadata.json"


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    uri: str
    sha256: str
    metadata: dict[str, Any]


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

    def _path(self, *parts: str) -> str:
        return "/".join([self._root.rstrip("/"), *parts])

    def versions(self, name: str) -> list[str]:
        """Registered versions of ``name``, oldest first."""
        selector = pafs.FileSelector(self._path(name), allow_not_found=True)
        found = [info.base_name for info in self._fs.get_file_info(selector) if info.type == pafs.FileType.Directory]
        return sorted((v for v in found if v.isdigit()), key=int)

    def register(self, name: str, *, model: bytes, model_card: str, metadata: dict[str, Any]) -> RegisteredModel:
        """Store a new version of ``name`` and return it."""
        if not _NAME.match(name):
            raise InvalidParameterError(
                f"model name {name!r} is not valid: use lowercase letters, digits, '.', '_' or '-'"
            )
        sha = sha256_bytes(model)
        if metadata.get("sha256") and metadata["sha256"] != sha:
            raise IntegrityError("the model bytes do not match the sha256 recorded at training time")
        staging = self._path(name, f".staging-{uuid.uuid4().hex}")
        self._fs.create_dir(staging, recursive=True)
        try:
            existing = self.versions(name)
            version = str(int(existing[-1]) + 1 if existing else 1)
            meta = {**metadata, "name": name, "version": version, "sha256": sha}
            for filename, data in (
                (MODEL_FILE, model),
                (CARD_FILE, model_card.encode("utf-8")),
                (META_FILE, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")),
            ):
                with self._fs.open_output_stream(f"{staging}/{filename}") as out:
                    out.write(data)
            target = self._path(name, version)
            if self._fs.get_file_info(target).type != pafs.FileType.NotFound:
                raise InvalidParameterError(f"version {version} of {name!r} appeared while registering; retry")
            self._fs.move(staging, target)
        except BaseException:
            self._fs.delete_dir(staging)
            raise
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
