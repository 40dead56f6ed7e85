"""Files: hashing, atomic writes (temp file + rename), JSON, and human-written text files."""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from kfp_rai.errors import IntegrityError, InvalidParameterError

T = TypeVar("T")
PathLike = str | os.PathLike[str]


def jsonable(value: Any) -> Any:
    """Plain JSON data: NaN/inf become None, numpy scalars and enums their values, tuples lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return jsonable(value.item())  # numpy scalar
    return value


def sha256_file(path: PathLike) -> str:
    """Return the hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    Whatever the writer does with the temporary path, readers see either the old file or the
    complete new one, never a half-written file; on any error the temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates 0600; the file gets the mode any new file would (0666 less the umask).
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: PathLike, obj: Any, *, sort_keys: bool = True) -> None:
    """Write ``obj`` as indented JSON atomically (``sort_keys=False`` keeps the given order)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys, default=str) + "\n")


def read_json(path: PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_yaml(text: str, what: str) -> Any:
    """Parse human-written YAML strictly: a key repeated in one mapping is refused (YAML would keep
    the last one silently, so a reviewer could read a threshold that is not the one applied); a text
    over :data:`MAX_HUMAN_FILE_BYTES`, or nested deeper than :data:`MAX_YAML_DEPTH`, is refused
    before it can take time or memory."""
    import yaml

    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_HUMAN_FILE_BYTES:
        raise InvalidParameterError(_too_large(what, size))
    if _flow_depth(text) > MAX_YAML_DEPTH:
        raise InvalidParameterError(_too_deep(what))

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if isinstance(key, (list, dict, set)):
                raise InvalidParameterError(
                    f"{what} has a key that is a list or mapping (line {key_node.start_mark.line + 1}): a key is a name"
                )
            if key in seen:
                raise InvalidParameterError(
                    f"{what} repeats the key {key!r} (line {key_node.start_mark.line + 1}): each key may appear once"
                )
            seen.add(key)
        return dict(loader.construct_mapping(node))

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        data = yaml.load(text, Loader=StrictLoader)  # nosec B506  # StrictLoader is a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InvalidParameterError(f"the {what} is not valid YAML: {exc}") from exc
    except ValueError as exc:  # an integer past Python's digit limit
        raise InvalidParameterError(f"the {what} holds a value that cannot be read: {exc}") from exc
    except RecursionError:
        raise InvalidParameterError(_too_deep(what)) from None
    if _depth(data) > MAX_YAML_DEPTH:  # block-style nesting (indentation), which the text scan does not see
        raise InvalidParameterError(_too_deep(what))
    return data


MAX_YAML_DEPTH = 20  # a policy is 3 levels deep, a reference population 4


def _too_large(what: str, size: int | None) -> str:
    found = f"is {size / 1024:.0f} KiB," if size is not None else "is"
    return (
        f"the {what} {found} over the {MAX_HUMAN_FILE_BYTES >> 10} KiB a {what} may be "
        "(it travels on a pipeline task's command line): shorten it"
    )


def _too_deep(what: str) -> str:
    return f"the {what} is nested more than {MAX_YAML_DEPTH} levels deep: no {what} is; shorten it"


def _flow_depth(text: str) -> int:
    """The deepest nesting of YAML's flow brackets ([ and {) in ``text``, quoted text included: a
    cheap bound taken before the parser, whose composer recurses once per level."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}" and depth:
            depth -= 1
    return deepest


def _depth(data: Any) -> int:
    """The nesting depth of parsed YAML (each node visited once: aliases are not walked twice)."""
    deepest, seen, todo = 0, set(), [(data, 1)]
    while todo:
        node, level = todo.pop()
        if not isinstance(node, (dict, list)) or id(node) in seen:
            continue
        seen.add(id(node))
        deepest = max(deepest, level)
        if deepest > MAX_YAML_DEPTH:
            return deepest
        todo.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


# A policy, plan, reviewer or reference file is a few KiB (the bundled ones 1.5-3.3 KiB). Each travels
# as text on a pipeline task's command line, where one argument may hold at most 128 KiB (Linux's
# MAX_ARG_STRLEN), so four of them together must fit: 24 KiB each.
MAX_HUMAN_FILE_BYTES = 24 << 10
_STORE_URI = re.compile(r"^(s3|gs|gcs|hdfs|viewfs|abfs|abfss|file)://\S+$")


def is_store_uri(text: str) -> bool:
    """Whether ``text`` is one object-store URI (what a Kubeflow UI text box can hold of a file)."""
    return bool(_STORE_URI.match(text.strip()))


def text_or_uri(text: str, what: str) -> str:
    """``text`` itself, or, when it is one URI of a store pyarrow reads (``s3://bucket/policy.yaml``),
    that file's UTF-8 text: a human-written file can live in the same store as the registry
    instead of being pasted into a UI text box. Larger than :data:`MAX_HUMAN_FILE_BYTES`, missing
    or unreadable: one line naming it."""
    if not text or not is_store_uri(text):
        return text
    import pyarrow as pa
    import pyarrow.fs as pafs

    uri = text.strip()
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        with fs.open_input_stream(path) as fh:
            data = bytes(fh.read(MAX_HUMAN_FILE_BYTES + 1))
    except (OSError, pa.ArrowException) as exc:
        raise InvalidParameterError(f"the {what} at {uri} cannot be read: {' '.join(str(exc).split())[:300]}") from exc
    if len(data) > MAX_HUMAN_FILE_BYTES:
        raise InvalidParameterError(f"the {what} at {uri}: {_too_large(what, None)}")  # read no further
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidParameterError(f"the {what} at {uri} is not UTF-8 text") from exc


def read_text_file(path: PathLike, label: str, parse: Callable[[str], T]) -> T:
    """Read a human-written file (policy, reference population) and parse it; errors name the file."""
    path = Path(path)
    if path.is_dir():
        raise InvalidParameterError(f"{label} {path} is a directory: pass the file itself")
    if not path.is_file():
        raise InvalidParameterError(f"{label} file not found: {path}")
    if (size := path.stat().st_size) > MAX_HUMAN_FILE_BYTES:  # refused unread: a 50 MB file is no policy
        raise InvalidParameterError(f"{path}: {_too_large(label, size)}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidParameterError(
            f"{label} file {path} is not UTF-8 text (byte {exc.start} cannot be decoded): save it as UTF-8"
        ) from exc
    try:
        return parse(text)
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{path}: {exc}") from exc


def read_key_file(path: PathLike, what: str, *, private: bool = True) -> bytes:
    """Read a key file, refusing one that someone else could read (private keys) or replace.

    The file (a symbolic link is followed: Kubernetes mounts Secrets through links) must belong to
    this user or to root, and be writable by its owner only. A private key must not be readable by
    other users; group read is accepted only on a root-owned file, the way Kubernetes presents a
    Secret to a pod's ``fsGroup`` (mode 0440).
    """
    file = Path(path)
    what = f"{what}{file}" if what.endswith("=") else f"{what}"
    if not file.is_file():
        raise IntegrityError(f"{what} does not exist")
    info = file.stat()
    mode = info.st_mode & 0o777
    owner_ok = not hasattr(os, "getuid") or info.st_uid in (os.getuid(), 0)
    if not owner_ok:
        raise IntegrityError(f"{what} belongs to another user: use a key file you own")
    if mode & 0o022:
        raise IntegrityError(f"{what} is writable by other users (mode {mode:o}): chmod go-w it")
    group_read_ok = info.st_uid == 0 and hasattr(os, "getuid") and os.getuid() != 0
    if private and (mode & 0o007 or (mode & 0o070 and not group_read_ok)):
        raise IntegrityError(f"{what} is accessible to other users (mode {mode:o}): chmod 600 it")
    return file.read_bytes()


class HumanWrittenYaml:
    """Mixin for a file people write (reference population, collection plan, reviewer file):
    ``from_yaml`` and ``load`` parse it strictly and hand the data to the class's ``from_dict``,
    so every such file is read, and refused, the same way. ``what`` names it in messages."""

    what: ClassVar[str] = "file"

    @classmethod
    def from_dict(cls: type[_Doc], data: Any) -> _Doc:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @classmethod
    def from_yaml(cls: type[_Doc], text: str) -> _Doc:
        """Parse the file's text (or read it from a store URI: :func:`text_or_uri`)."""
        return cls.from_dict(load_yaml(text_or_uri(text, cls.what), cls.what))

    @classmethod
    def load(cls: type[_Doc], path: PathLike) -> _Doc:
        return read_text_file(path, cls.what, cls.from_yaml)


_Doc = TypeVar("_Doc", bound=HumanWrittenYaml)
