"""A model directory: the skops model file and its metadata, signed as a whole and verified before
anything in it is read; the model file holds only the exact types kfp-rai writes.

Layout (training output, registry version, serving input alike)::

    model.skops      the fitted estimator, serialized with skops (never pickle)
    metadata.json    features, training summary, lineage, and the model file's sha256
    model_card.md    in a registry version: the card it was registered with, naming its version
                     (with model_card.html and model_card.json, and the human-written files it
                     was judged under: policy.yaml, collection_plan.yaml, reference_population.yaml)
    model.sig        the signature over every file (see kfp_rai.core.signing)
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kfp_rai._version import __version__
from kfp_rai.core.files import PathLike, atomic_write_bytes, sha256_bytes
from kfp_rai.core.signing import SIGNATURE_FILE, read_flat_dir, sign_files, verify_model_dir
from kfp_rai.errors import IntegrityError, InvalidParameterError

MODEL_FILE = "model.skops"
META_FILE = "metadata.json"
CARD_FILE = "model_card.md"
CARD_HTML_FILE, CARD_JSON_FILE = "model_card.html", "model_card.json"  # the same card, for browsers and programs
REFERENCE_FILE = "reference_summary.json"  # the training data's summary (kfp_rai.stats), for drift

# Exactly the (class, skops node kind) pairs a kfp-rai model file may name: what train_model writes,
# with or without a mitigation (a test trains models and compares). Anything else, a function, a
# callable constructor, or a trusted class built by another node kind, is refused before skops
# builds a single object.
TRUSTED_NODES = frozenset(
    {
        ("builtins.dict", "DictNode"),
        ("builtins.int", "TypeNode"),
        ("builtins.list", "ListNode"),
        ("builtins.slice", "SliceNode"),
        ("builtins.str", "JsonNode"),
        ("builtins.str", "TypeNode"),
        ("builtins.tuple", "TupleNode"),
        ("fairlearn.preprocessing._correlation_remover.CorrelationRemover", "ObjectNode"),
        ("kfp_rai.training._mitigation.DecorrelatedClassifier", "ObjectNode"),
        ("kfp_rai.training._mitigation.GroupThresholdClassifier", "ObjectNode"),
        ("kfp_rai.training._mitigation.RandomizedClassifier", "ObjectNode"),
        ("numpy.float64", "TypeNode"),
        ("numpy.ndarray", "NdArrayNode"),
        ("numpy.random._generator.Generator", "RandomGeneratorNode"),
        ("numpy.uint64", "NdArrayNode"),
        ("sklearn._loss._loss.CyHalfBinomialLoss", "LossNode"),
        ("sklearn._loss.link.Interval", "ObjectNode"),
        ("sklearn._loss.link.LogitLink", "ObjectNode"),
        ("sklearn._loss.loss.HalfBinomialLoss", "ObjectNode"),
        ("sklearn.compose._column_transformer.ColumnTransformer", "ObjectNode"),
        ("sklearn.ensemble._hist_gradient_boosting.binning._BinMapper", "ObjectNode"),
        ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier", "ObjectNode"),
        ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", "ObjectNode"),
        ("sklearn.pipeline.Pipeline", "ObjectNode"),
        ("sklearn.preprocessing._encoders.OneHotEncoder", "ObjectNode"),
        ("sklearn.preprocessing._function_transformer.FunctionTransformer", "ObjectNode"),
        ("sklearn.preprocessing._label.LabelEncoder", "ObjectNode"),
    }
)


# A node may also name something through its arguments: a random generator's state names its bit
# generator by class, which numpy.random's attribute of that name is then called to rebuild. Only
# the one training writes (numpy's default) may be named.
TRUSTED_BIT_GENERATORS = frozenset({"PCG64"})


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


def _bit_generators(tree: Any) -> Iterator[str]:
    """The bit generator every random generator node names (``?`` where the shape is unexpected)."""
    if isinstance(tree, dict):
        if tree.get("__loader__") == "RandomGeneratorNode":
            try:
                yield str(json.loads(tree["content"]["bit_generator"]["content"]["bit_generator"]["content"]))
            except (KeyError, TypeError, ValueError):
                yield "?"
        for value in tree.values():
            yield from _bit_generators(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _bit_generators(value)


def _schema(model: PathLike | bytes) -> Any:
    try:
        with zipfile.ZipFile(io.BytesIO(model) if isinstance(model, bytes) else model) as archive:
            return json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IntegrityError(f"the model file is not a skops file: {type(exc).__name__}: {exc}") from exc


def model_types(model: PathLike | bytes) -> set[tuple[str, str]]:
    """The (type, loader) pairs a skops file (a path or its bytes) names, read from its schema
    without building anything."""
    return set(_nodes(_schema(model)))


def load_model_bytes(data: bytes, *, expected_sha256: str, shown_as: PathLike = MODEL_FILE) -> Any:
    """Build a model from skops bytes after checking their sha256 and that they name only
    :data:`TRUSTED_NODES`; the bytes checked are the bytes loaded.

    Raises
    ------
    IntegrityError
        The hash differs from ``expected_sha256`` (tampered or corrupted), or the file names a
        (type, node kind) pair kfp-rai does not write; nothing in it is built then.
    """
    import skops.io as sio

    _check_hash(sha256_bytes(data), expected_sha256, shown_as)
    schema = _schema(data)
    refused = sorted(f"{t} ({loader})" for t, loader in set(_nodes(schema)) - TRUSTED_NODES)
    named = set(_bit_generators(schema)) - TRUSTED_BIT_GENERATORS
    refused += sorted(f"numpy.random.{n} (bit generator)" for n in named)
    if refused:
        raise IntegrityError(f"model file {shown_as} names what kfp-rai never writes, {refused}: refusing to load it")
    # skops is told to trust only what it reports and our list holds: never its report wholesale
    types = {t for t, _ in TRUSTED_NODES}
    untrusted = sio.get_untrusted_types(data=data)
    if unknown := sorted(set(untrusted) - types):
        raise IntegrityError(f"model file {shown_as} names what kfp-rai never writes, {unknown}: refusing to load it")
    try:
        return sio.loads(data, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001 - whatever skops still refuses is one line, never a traceback
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise IntegrityError(
            f"model file {shown_as} cannot be built ({type(exc).__name__}: {first}): refusing it"
        ) from exc


def load_model(path: PathLike, *, expected_sha256: str) -> Any:
    """:func:`load_model_bytes` on a file, read once."""
    return load_model_bytes(Path(path).read_bytes(), expected_sha256=expected_sha256, shown_as=path)


def _check_hash(actual: str, expected_sha256: str, shown_as: PathLike) -> None:
    if not expected_sha256:
        raise IntegrityError(f"refusing to load {shown_as}: no expected sha256 was given")
    if actual != expected_sha256:
        raise IntegrityError(
            f"model file {shown_as} has sha256 {actual[:12]}..., expected {expected_sha256[:12]}...: "
            "the artifact was changed after it was written; retrain or restore it"
        )


def save_model_dir(
    model: Any, path: PathLike, metadata: dict[str, Any], extra: Mapping[str, bytes] | None = None
) -> dict[str, Any]:
    """Save ``model`` as ``<path>/model.skops`` with ``<path>/metadata.json`` (and the ``extra``
    files, e.g. :data:`REFERENCE_FILE`) and sign the directory; return the metadata."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    data = model_bytes(model)
    meta = {**metadata, "sha256": sha256_bytes(data), "kfp_rai_version": __version__, "format": "skops"}
    files = {MODEL_FILE: data, META_FILE: metadata_bytes(meta), **(extra or {})}
    signature = sign_files(files, directory)  # what is signed is what is written, not a re-read
    for name, content in files.items():
        atomic_write_bytes(directory / name, content)
    atomic_write_bytes(directory / SIGNATURE_FILE, signature)
    return meta


def metadata_bytes(meta: dict[str, Any]) -> bytes:
    """``metadata.json`` as written: indented, keys sorted."""
    return (json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


def _verified(path: PathLike, expected_sha256: str | None) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The directory's files, read once and verified, and its metadata, checked against the model."""
    files = verify_model_dir(path)
    if META_FILE not in files or MODEL_FILE not in files:
        raise IntegrityError(f"{path} is not a kfp-rai model directory: it lacks {MODEL_FILE} or {META_FILE}")
    try:
        meta = json.loads(files[META_FILE].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{Path(path) / META_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
        raise IntegrityError(f"{Path(path) / META_FILE} is not a model's metadata (a mapping with its sha256)")
    if expected_sha256 and expected_sha256 != meta["sha256"]:
        raise IntegrityError(f"{path}: the artifact's recorded sha256 differs from {META_FILE}: refusing it")
    _check_hash(sha256_bytes(files[MODEL_FILE]), meta["sha256"], Path(path) / MODEL_FILE)
    return files, dict(meta)


def read_model_metadata(path: PathLike, expected_sha256: str | None = None) -> dict[str, Any]:
    """The metadata of a model directory, after verifying the directory's signature and that the
    model file matches the metadata.

    Nothing is deserialized: use this wherever only the metadata is needed (cards, registration).
    ``expected_sha256`` (from the artifact's own metadata) must agree with the directory's record.
    """
    return _verified(path, expected_sha256)[1]


def read_model_files(path: PathLike, expected_sha256: str | None = None) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The verified files of a model directory (the signature left out) and its metadata: what
    registration and deployment copy, the very bytes that were verified."""
    return _verified(path, expected_sha256)


def load_model_dir(path: PathLike, expected_sha256: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Load a model directory written by :func:`save_model_dir`: its files are read once, then
    verified, hashed, checked against the trust list and deserialized from those same bytes."""
    files, meta = _verified(path, expected_sha256)
    model = load_model_bytes(files[MODEL_FILE], expected_sha256=meta["sha256"], shown_as=Path(path) / MODEL_FILE)
    return model, meta


def copy_version(uri: str, into: PathLike) -> Path:
    """Every file of a registry version (signature included), copied into the directory ``into``
    (a pipeline artifact): later tasks verify the copy as they would the version."""
    import tempfile

    target = Path(into)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kfp-rai-version-") as scratch:
        source = fetch_version(uri, scratch)
        for name, data in read_flat_dir(source).items():
            atomic_write_bytes(target / name, data)
    return target


def fetch_version(uri: str, into: PathLike) -> Path:
    """A registry version as a local directory: a local path as it is, any pyarrow URI (s3://...)
    copied file by file into ``into``. Verify it before use (:func:`verify_model_dir`)."""
    if "://" not in uri:
        return Path(uri)
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        fs, root = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidParameterError(
            f"{uri}: {exc}; give a local directory or a URI pyarrow reads (s3://, gs://, hdfs://, file://)"
        ) from exc
    local = Path(into)
    local.mkdir(parents=True, exist_ok=True)
    for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=False)):
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as src:
                (local / info.base_name).write_bytes(src.read())
    return local
