"""Reading and writing tabular data (parquet, csv) and files, with hashes and atomic writes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kfp_rai.errors import DataValidationError, InvalidParameterError

logger = logging.getLogger(__name__)
T = TypeVar("T")

BUNDLED_PREFIX = "bundled:"
_FORMATS = ("parquet", "csv")
_MSG_MISSING = "data file not found: {path}. Pass an existing .csv or .parquet file."
_MSG_FORMAT = "cannot tell the format of {path!s}: use a file ending in .csv, .csv.gz or .parquet"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (no half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any, *, sort_keys: bool = True) -> None:
    """Write ``obj`` as indented JSON atomically (``sort_keys=False`` keeps the given order)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys, default=str) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def parse_text_file(path: str | os.PathLike[str], label: str, parse: Callable[[str], T]) -> T:
    """Read a human-written file (policy, reference population) and parse it; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"{label} file not found: {path}")
    try:
        return parse(path.read_text(encoding="utf-8"))
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{path}: {exc}") from exc


def _infer_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".parquet") or lower.endswith(".pq"):
        return "parquet"
    if lower.endswith(".csv") or lower.endswith(".csv.gz"):
        return "csv"
    raise DataValidationError(_MSG_FORMAT.format(path=path))


def read_table(
    source: str | os.PathLike[str], *, format: str | None = None, text_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Read a csv or parquet file, or a bundled data set (``bundled:adult``), into a DataFrame.

    Parameters
    ----------
    source : str or path
        A local path, or ``bundled:<name>`` for data shipped with the package
        (see :func:`kfp_rai.datasets.load_bundled`).
    format : {"parquet", "csv"}, optional
        Needed when the path has no telling suffix (kfp artifact paths have none).
    text_columns : list of str, optional
        Columns read as text whatever they look like (identifiers: ``000123`` stays ``000123``,
        and a missing value does not turn ``123`` into ``123.0``).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataValidationError
        The file is missing, unreadable, of an unknown format, or holds no rows.
    """
    source = str(source)
    if source.startswith(BUNDLED_PREFIX):
        from kfp_rai.datasets import load_bundled

        return load_bundled(source[len(BUNDLED_PREFIX) :])
    if format is not None and format not in _FORMATS:
        raise InvalidParameterError(f"format must be one of {_FORMATS}, got {format!r}")
    path = Path(source)
    if not path.is_file():
        raise DataValidationError(_MSG_MISSING.format(path=path))
    fmt = format or _infer_format(source)
    try:
        if fmt == "parquet":
            table = pq.read_table(path)
            df = table.to_pandas()
            for col in set(text_columns) & set(table.column_names):  # from Arrow, before any float
                df[col] = pd.array(table.column(col).cast(pa.string()).to_pylist(), dtype="string")
        else:
            df = pd.read_csv(path, skipinitialspace=True, dtype={c: "string" for c in text_columns})
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataValidationError(f"cannot read {path} as {fmt}: {exc}") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"{path} is empty: it holds no header and no rows") from exc
    if df.empty:
        raise DataValidationError(f"{path} holds no rows: pass a data set with data in it")
    return df


def table_schema(df: pd.DataFrame) -> dict[str, str]:
    """Column name -> Arrow type name, as recorded in artifact metadata."""
    schema = pa.Schema.from_pandas(df, preserve_index=False)
    return {field.name: str(field.type) for field in schema}


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Write ``df`` as zstd parquet atomically and return its metadata.

    Returns
    -------
    dict
        ``rows``, ``columns``, ``sha256`` (of the written file) and ``schema``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {
        "rows": int(len(df)),
        "columns": int(df.shape[1]),
        "sha256": sha256_file(path),
        "schema": table_schema(df),
    }
