"""A model directory: the skops model file and its metadata, signed as a whole and verified before
anything in it is read; the model file holds only the exact types kfp-rai writes.

Layout (training output, registry version, serving input alike)::

    model.skops      the fitted estimator, serialized with skops (never pickle)
    metadata.json    features, training summary, lineage, and the model file's sha256
    model_card.md    in a registry version: the card it was registered with
    model.sig        the signature over every file (see kfp_rai.core.signing)
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kfp_rai._version import __version__
from kfp_rai.core.files import PathLike, atomic_write_bytes, sha256_bytes, sha256_file, write_json
from kfp_rai.core.signing import sign_model_dir, verify_model_dir
from kfp_rai.errors import IntegrityError

MODEL_FILE = "model.skops"
META_FILE = "metadata.json"
CARD_FILE = "model_card.md"

# The exact classes a kfp-rai model file may name, and the skops node kinds that may build them:
# what train_model writes (a test trains a model and compares). Anything else, a function or a
# callable constructor above all, is refused before skops builds a single object.
TRUSTED_TYPES = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "numpy.float64",
        "numpy.ndarray",
        "numpy.uint64",
        "numpy.random._generator.Generator",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.preprocessing._label.LabelEncoder",
    }
)
TRUSTED_LOADERS = frozenset(
    {
        "DictNode",
        "JsonNode",
        "ListNode",
        "LossNode",
        "NdArrayNode",
        "ObjectNode",
        "RandomGeneratorNode",
        "SliceNode",
        "TupleNode",
        "TypeNode",
    }
)


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


def _nodes(tree: Any) -> Iterator[tuple[str, str]]:
    """Every (``module.class``, loader) a skops schema names, however deeply nested."""
    if isinstance(tree, dict):
        if "__class__" in tree or "__loader__" in tree:
            yield f"{tree.get('__module__')}.{tree.get('__class__')}", str(tree.get("__loader__"))
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def model_types(path: PathLike) -> set[tuple[str, str]]:
    """The (type, loader) pairs a skops file names, read from its schema without building anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"model file {path} is not a skops file: {exc}") from exc
    return set(_nodes(schema))


def load_model(path: PathLike, *, expected_sha256: str) -> Any:
    """Load a skops model after checking its sha256 and that it names only :data:`TRUSTED_TYPES`.

    Raises
    ------
    IntegrityError
        The file's hash differs from ``expected_sha256`` (tampered or corrupted), or it names a type
        or node kind kfp-rai does not write; nothing in it is built then.
    """
    import skops.io as sio

    path = Path(path)
    _check_hash(path, expected_sha256)
    found = model_types(path)
    refused = sorted({t for t, _ in found} - TRUSTED_TYPES) + sorted({n for _, n in found} - TRUSTED_LOADERS)
    if refused:
        raise IntegrityError(f"model file {path} names what kfp-rai never writes, {refused}: refusing to load it")
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


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
    """Save ``model`` as ``<path>/model.skops`` with ``<path>/metadata.json`` and sign the
    directory; return the metadata."""
    Path(path).mkdir(parents=True, exist_ok=True)
    sha = save_model(model, Path(path) / MODEL_FILE)
    meta = {**metadata, "sha256": sha, "kfp_rai_version": __version__, "format": "skops"}
    write_json(Path(path) / META_FILE, meta)
    sign_model_dir(path)
    return meta


def read_model_metadata(path: PathLike, expected_sha256: str | None = None) -> dict[str, Any]:
    """The metadata of a model directory, after verifying the directory's signature and that the
    model file matches the metadata.

    Nothing is deserialized: use this wherever only the metadata is needed (cards, registration).
    ``expected_sha256`` (from the artifact's own metadata) must agree with the directory's record.
    """
    verify_model_dir(path)
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise IntegrityError(f"{path} is not a kfp-rai model directory: {META_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
        raise IntegrityError(f"{meta_path} is not a model's metadata (a mapping with its sha256)")
    if expected_sha256 and expected_sha256 != meta.get("sha256"):
        raise IntegrityError(f"{path}: the artifact's recorded sha256 differs from {META_FILE}: refusing it")
    _check_hash(Path(path) / MODEL_FILE, expected_sha256 or meta.get("sha256", ""))
    return dict(meta)


def load_model_dir(path: PathLike, expected_sha256: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Load a model directory written by :func:`save_model_dir`, verifying its hash first."""
    meta = read_model_metadata(path, expected_sha256)
    return load_model(Path(path) / MODEL_FILE, expected_sha256=meta["sha256"]), meta


def fetch_version(uri: str, into: PathLike) -> Path:
    """A registry version as a local directory: a local path as it is, any pyarrow URI (s3://...)
    copied file by file into ``into``. Verify it before use (:func:`verify_model_dir`)."""
    if "://" not in uri:
        return Path(uri)
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(uri)
    local = Path(into)
    local.mkdir(parents=True, exist_ok=True)
    for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=False)):
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as src:
                (local / info.base_name).write_bytes(src.read())
    return local
