"""A model directory: the skops model file and its metadata, verified by sha256 before any load.

Layout (training output, registry version, serving input alike)::

    model.skops      the fitted estimator, serialized with skops (never pickle)
    metadata.json    features, training summary, lineage, and the model file's sha256
    model_card.md    in a registry version: the card it was registered with
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from kfp_rai._version import __version__
from kfp_rai.core.files import PathLike, atomic_write_bytes, sha256_bytes, sha256_file, write_json
from kfp_rai.errors import IntegrityError

MODEL_FILE = "model.skops"
META_FILE = "metadata.json"
CARD_FILE = "model_card.md"

# Types a kfp-rai model may contain beyond skops' defaults. Anything else is refused on load.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "fairlearn.")


def model_bytes(model: Any) -> bytes:
    """Serialize ``model`` with skops (deflated: tree ensembles shrink about 4x)."""
    import skops.io as sio

    data: bytes = sio.dumps(model, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    return data


def save_model(model: Any, path: PathLike) -> str:
    """Serialize ``model`` with skops to ``path`` atomically; return the file's sha256."""
    data = model_bytes(model)
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def load_model(path: PathLike, *, expected_sha256: str) -> Any:
    """Load a skops model after checking its sha256.

    Raises
    ------
    IntegrityError
        The file's hash differs from ``expected_sha256`` (tampered or corrupted), or it holds a
        type kfp-rai does not trust.
    """
    import skops.io as sio

    path = Path(path)
    _check_hash(path, expected_sha256)
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if refused:
        raise IntegrityError(f"model file {path} contains untrusted types {refused}; refusing to load it")
    return sio.load(path, trusted=untrusted)


def _check_hash(path: Path, expected_sha256: str) -> None:
    if not expected_sha256:
        raise IntegrityError(f"refusing to load {path}: no expected sha256 was given")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise IntegrityError(
            f"model file {path} has sha256 {actual[:12]}..., expected {expected_sha256[:12]}...: "
            "the artifact was changed after it was written; retrain or restore it"
        )


def save_model_dir(model: Any, path: PathLike, metadata: dict[str, Any]) -> dict[str, Any]:
    """Save ``model`` as ``<path>/model.skops`` with ``<path>/metadata.json``; return the metadata."""
    Path(path).mkdir(parents=True, exist_ok=True)
    sha = save_model(model, Path(path) / MODEL_FILE)
    meta = {**metadata, "sha256": sha, "kfp_rai_version": __version__, "format": "skops"}
    write_json(Path(path) / META_FILE, meta)
    return meta


def read_model_metadata(path: PathLike, expected_sha256: str | None = None) -> dict[str, Any]:
    """The metadata of a model directory, after checking that the model file matches it.

    Nothing is deserialized: use this wherever only the metadata is needed (cards, registration).
    ``expected_sha256`` (from the artifact's own metadata) must agree with the directory's record.
    """
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise IntegrityError(f"{path} is not a kfp-rai model directory: {META_FILE} is missing")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if expected_sha256 and expected_sha256 != meta.get("sha256"):
        raise IntegrityError(f"{path}: the artifact's recorded sha256 differs from {META_FILE}: refusing it")
    _check_hash(Path(path) / MODEL_FILE, expected_sha256 or meta.get("sha256", ""))
    return dict(meta)


def load_model_dir(path: PathLike, expected_sha256: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Load a model directory written by :func:`save_model_dir`, verifying its hash first."""
    meta = read_model_metadata(path, expected_sha256)
    return load_model(Path(path) / MODEL_FILE, expected_sha256=meta["sha256"]), meta
