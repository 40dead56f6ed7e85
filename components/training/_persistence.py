"""Model persistence with skops (never pickle), verified by sha256 before every load."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import skops.io as sio

from kfp_rai.errors import IntegrityError
from kfp_rai.io import atomic_write_bytes, sha256_bytes, sha256_file

# Types a kfp-rai model may contain beyond skops' defaults. Anything else is refused on load.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "fairlearn.")


def save_model(model: Any, path: str | os.PathLike[str]) -> str:
    """Serialize ``model`` with skops to ``path`` atomically; return the file's sha256."""
    # Deflate: tree ensembles shrink ~4x, which keeps a model small enough to ship in a ConfigMap.
    data = sio.dumps(model, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def load_model(path: str | os.PathLike[str], *, expected_sha256: str) -> Any:
    """Load a skops model after checking its sha256.

    Raises
    ------
    IntegrityError
        The file's hash differs from ``expected_sha256`` (tampered or corrupted), or it holds a
        type kfp-rai does not trust.
    """
    path = Path(path)
    if not expected_sha256:
        raise IntegrityError(f"refusing to load {path}: no expected sha256 was given")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise IntegrityError(
            f"model file {path} has sha256 {actual[:12]}..., expected {expected_sha256[:12]}...: "
            "the artifact was changed after it was written; retrain or restore it"
        )
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if refused:
        raise IntegrityError(f"model file {path} contains untrusted types {refused}; refusing to load it")
    return sio.load(path, trusted=untrusted)
