"""Tabular data in and out: csv/parquet/bundled sources read into pandas, zstd parquet written."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kfp_rai.core.bundled import BUNDLED_PREFIX, load_bundled
from kfp_rai.core.files import PathLike, atomic_path, sha256_file
from kfp_rai.core.header import check_width, csv_header
from kfp_rai.errors import DataValidationError, InvalidParameterError

Format = Literal["parquet", "csv"]
_FORMATS = ("parquet", "csv")
_MSG_MISSING = "data file not found: {path}. Pass an existing .csv or .parquet file."
_MSG_FORMAT = "cannot tell the format of {path!s}: use a file ending in .csv, .csv.gz or .parquet"


def _infer_format(path: str) -> Format:
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith((".csv", ".csv.gz")):
        return "csv"
    raise DataValidationError(_MSG_FORMAT.format(path=path))


def read_table(source: PathLike, *, format: Format | None = None, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a csv or parquet file, or a bundled data set (``bundled:adult``), into a DataFrame.

    Parameters
    ----------
    source : str or path
        A local path, or ``bundled:<name>`` for data shipped with the package
        (see :func:`kfp_rai.core.bundled.load_bundled`).
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
        return load_bundled(source[len(BUNDLED_PREFIX) :])
    if format is not None and format not in _FORMATS:
        raise InvalidParameterError(f"format must be one of {_FORMATS}, got {format!r}")
    path = Path(source)
    if not path.is_file():
        raise DataValidationError(_MSG_MISSING.format(path=path))
    fmt = format or _infer_format(source)
    df: pd.DataFrame
    try:
        _refuse_repeated_names(path, fmt)
        if fmt == "parquet":
            table = pq.read_table(path)
            df = table.to_pandas()
            for col in set(text_columns) & set(table.column_names):  # from Arrow, before any float
                df[col] = pd.array(table.column(col).cast(pa.string()).to_pylist(), dtype="string")
        else:
            df = pd.read_csv(path, skipinitialspace=True, dtype=dict.fromkeys(text_columns, "string"))
    except DataValidationError:
        raise
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
        raise DataValidationError(f"cannot read {path} as {fmt}: {' '.join(str(exc).split())}") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"{path} is empty: it holds no header and no rows") from exc
    if df.empty:
        raise DataValidationError(f"{path} holds no rows: pass a data set with data in it")
    return df


def _refuse_repeated_names(path: Path, fmt: Format) -> None:
    """pandas renames a repeated CSV header (``x``, ``x.1``) and a model would train on both: refuse.
    Too many columns are refused here too, before pandas reads a row."""
    if fmt == "parquet":
        names = [str(n) for n in pq.read_schema(path).names]
        check_width(names, path)
    else:
        names = csv_header(path)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataValidationError(f"{path}: columns {repeated} appear more than once: give every column its own name")


def table_schema(df: pd.DataFrame) -> dict[str, str]:
    """Column name -> Arrow type name, as recorded in artifact metadata."""
    schema = pa.Schema.from_pandas(df, preserve_index=False)
    return {field.name: str(field.type) for field in schema}


def write_table(df: pd.DataFrame, path: PathLike) -> dict[str, Any]:
    """Write ``df`` as zstd parquet atomically and return its metadata.

    Returns
    -------
    dict
        ``rows``, ``columns``, ``sha256`` (of the written file) and ``schema``.
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return {
        "rows": int(len(df)),
        "columns": int(df.shape[1]),
        "sha256": sha256_file(path),
        "schema": table_schema(df),
    }
