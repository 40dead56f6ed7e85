"""One streamed pass over a data set: parquet, CSV or a directory of parquet partitions read as
pyarrow record batches, so memory is bounded by the batch size and the summaries' bins, not by rows.

A progress bar (tqdm, on stderr) shows on long inputs when stderr is a terminal, and stays off
otherwise (pipelines, CI, redirected output).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd
from kfp_rai.errors import DataValidationError

BATCH_ROWS = 131_072
_BUNDLED = "bundled:"  # core.bundled.BUNDLED_PREFIX, without importing pandas for every source
_PROGRESS_ROWS = 1_000_000  # below this a pass takes about a second: no bar

Source: TypeAlias = "str | os.PathLike[str] | pd.DataFrame | pa.Table"


def is_dataframe(value: object) -> bool:
    """Whether ``value`` is a pandas DataFrame, without importing pandas (0.35 s) when it is not."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


@dataclass(frozen=True)
class Batches:
    """A data set to stream: its schema, its row count when known, and how to read it again."""

    name: str
    schema: pa.Schema
    rows: int | None
    _open: Callable[[Sequence[str] | None], Iterator[pa.RecordBatch]]

    def read(self, columns: Sequence[str] | None = None, *, progress: bool | None = None) -> Iterator[pa.RecordBatch]:
        """The record batches (only ``columns`` when given); a progress bar per :func:`show_progress`."""
        batches = self._open(list(columns) if columns is not None else list(self.schema.names))
        if not show_progress(self.rows, progress):
            yield from batches
            return
        from tqdm import tqdm

        with tqdm(total=self.rows, unit="rows", unit_scale=True, desc=self.name, file=sys.stderr) as bar:
            for batch in batches:
                yield batch
                bar.update(batch.num_rows)

    def __post_init__(self) -> None:
        from kfp_rai.core.header import check_width

        check_width(self.schema.names, self.name)

    def require(self, columns: Sequence[str], what: str = "data") -> None:
        missing = [c for c in columns if c not in self.schema.names]
        if missing:
            raise DataValidationError(f"the {what} ({self.name}) lacks the columns {missing}")


def show_progress(rows: int | None, asked: bool | None = None) -> bool:
    """Whether to draw a bar: as asked, else only for long inputs on a terminal."""
    if asked is not None:
        return asked
    return bool(sys.stderr.isatty() and (rows is None or rows >= _PROGRESS_ROWS))


def open_batches(source: Source | Batches, *, format: str | None = None, batch_rows: int = BATCH_ROWS) -> Batches:
    """A data set to stream: a DataFrame or Arrow table in memory, ``bundled:<name>``, a parquet or
    CSV file, or a directory of parquet files (partitions, read in name order). ``format``
    ("parquet" or "csv") is for a file whose name does not tell (kfp artifact paths).

    Raises
    ------
    DataValidationError
        The source is missing, of an unknown format, unreadable, or holds no columns.
    """
    if isinstance(source, Batches):
        return source
    if format not in (None, "parquet", "csv"):
        raise DataValidationError(f"format must be parquet or csv, got {format!r}")
    if is_dataframe(source):
        source = pa.Table.from_pandas(source, preserve_index=False)
    if isinstance(source, pa.Table):
        table = source
        return Batches("data", table.schema, table.num_rows, lambda cols: _table_batches(table, cols, batch_rows))
    text = str(source)
    if "://" in text:
        return _store_batches(text, batch_rows)
    if text.startswith(_BUNDLED):
        from kfp_rai.core.bundled import load_bundled  # imports pandas (0.35 s): only for bundled data

        return open_batches(load_bundled(text[len(_BUNDLED) :]), batch_rows=batch_rows)
    path = Path(text)
    try:
        if path.is_dir():
            files = partition_files(path)
            if not files:
                raise DataValidationError(f"{path} holds no .parquet files: pass a file or a directory of partitions")
            schema = _without_index(pq.read_schema(files[0]))
            rows = 0
            for f in files:
                meta = pq.ParquetFile(f).metadata
                if not _compatible(_without_index(meta.schema.to_arrow_schema()), schema):
                    raise DataValidationError(
                        f"partition {f.relative_to(path)} has other columns or types than {files[0].relative_to(path)}"
                    )
                rows += meta.num_rows
            return Batches(path.name, schema, rows, _parquet_reader(files, batch_rows))
        if not path.is_file():
            raise DataValidationError(
                f"data not found: {path}. Pass a .parquet or .csv file or a directory of parquet files."
            )
        lower = path.name.lower()
        if format == "parquet" or (format is None and lower.endswith((".parquet", ".pq"))):
            meta = pq.ParquetFile(path).metadata
            schema = _without_index(meta.schema.to_arrow_schema())
            return Batches(path.name, schema, meta.num_rows, _parquet_reader([path], batch_rows))
        if format == "csv" or (format is None and lower.endswith((".csv", ".csv.gz"))):
            schema = _csv_schema(path, batch_rows)
            return Batches(path.name, schema, None, lambda cols: _csv_batches(path, schema, cols, batch_rows))
    except DataValidationError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
    raise DataValidationError(
        f"cannot tell the format of {path}: use .parquet, .csv, .csv.gz or a directory of parquet"
    )


def _store_batches(uri: str, batch_rows: int) -> Batches:
    """Parquet in an object store (``s3://bucket/current/``, a file or a directory of partitions),
    read through pyarrow's file system row group by row group, as a local file is."""
    import pyarrow.fs as pafs

    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.Directory:
            selector = pafs.FileSelector(root, recursive=True)
            files = sorted(
                i.path
                for i in fs.get_file_info(selector)
                if i.is_file
                and i.path.endswith((".parquet", ".pq"))
                and not any(part.startswith((".", "_")) for part in i.path[len(root) :].strip("/").split("/"))
            )
        elif info.type == pafs.FileType.File:
            files = [root]
        else:
            raise DataValidationError(f"data not found: {uri}")
        if not files:
            raise DataValidationError(f"{uri} holds no .parquet files: pass a file or a directory of partitions")
        rows, schema = 0, None
        for f in files:
            meta = pq.ParquetFile(fs.open_input_file(f)).metadata
            rows += meta.num_rows
            schema = schema or _without_index(meta.schema.to_arrow_schema())
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(f"cannot read {uri}: {' '.join(str(exc).split())}") from exc
    if schema is None:  # at least one file was read above
        raise DataValidationError(f"{uri} holds no .parquet files: pass a file or a directory of partitions")
    return Batches(uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1], schema, rows,
                   _parquet_reader(files, batch_rows, fs))  # fmt: skip


def partition_files(root: Path) -> list[Path]:
    """The parquet files of a partitioned data set, in name order; hidden and ``_``-prefixed files
    and directories (``_temporary/``, ``.staging``, ``_SUCCESS``) are left out, as Spark and Arrow do."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in {".parquet", ".pq"}
        and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )


def _without_index(schema: pa.Schema) -> pa.Schema:
    """The schema without the index pandas stores as a column (``__index_level_0__``): not data."""
    meta = schema.pandas_metadata or {}
    for name in [c for c in meta.get("index_columns", []) if isinstance(c, str)]:
        if name in schema.names:
            schema = schema.remove(schema.get_field_index(name))
    return schema


def _compatible(a: pa.Schema, b: pa.Schema) -> bool:
    """Same columns and types; a column of nulls only (an empty partition's text) fits any type."""
    if a.names != b.names:
        return False
    return all(
        x.type == y.type or pa.types.is_null(x.type) or pa.types.is_null(y.type) for x, y in zip(a, b, strict=True)
    )


def _table_batches(table: pa.Table, columns: Sequence[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
    yield from (table.select(list(columns)) if columns is not None else table).to_batches(max_chunksize=batch_rows)


def _parquet_reader(
    files: Sequence[Path | str], batch_rows: int, fs: Any = None
) -> Callable[[Sequence[str] | None], Iterator[Any]]:
    """Row group by row group, file by file: memory stays at about one row group of the columns
    read. ``ParquetFile.iter_batches`` with its defaults buffered far more: a peak RSS of 1.6 GB
    over a 10M x 30 file, against 0.33 GB this way (benchmarks/RESULTS.md)."""

    def read(columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        wanted = list(columns) if columns is not None else None
        for path in files:
            try:
                # Text columns come as Arrow dictionaries (as parquet stores them): counting them
                # then needs no re-hashing of every string (see stats.summary.dictionary_codes).
                source = fs.open_input_file(path) if fs is not None else path
                text = [
                    f.name
                    for f in pq.read_schema(source)
                    if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                ]
                with pq.ParquetFile(source, pre_buffer=False, read_dictionary=text) as file:
                    for group in range(file.metadata.num_row_groups):
                        table = file.read_row_group(group, columns=wanted)
                        yield from table.to_batches(max_chunksize=batch_rows)
                        del table
            except (pa.ArrowException, OSError) as exc:
                raise DataValidationError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc

    return read


def _csv_chunks(path: Path, batch_rows: int, columns: list[str] | None = None, dtype: Any = None) -> Any:
    import pandas as pd

    # As read_table reads CSV (skipinitialspace: "a, b" files such as UCI's), in chunks of batch_rows;
    # numbers parsed to the same double they were written from.
    return pd.read_csv(
        path, skipinitialspace=True, chunksize=batch_rows, usecols=columns, dtype=dtype, float_precision="round_trip"
    )


def _csv_schema(path: Path, batch_rows: int) -> pa.Schema:
    """Column types from the first chunk: numbers as float64 (a later missing value cannot turn an
    integer column into another type midway), everything else as text."""
    import pandas as pd

    from kfp_rai.core.header import csv_header

    csv_header(path)  # bounded before pandas reads a row
    try:
        with _csv_chunks(path, batch_rows) as reader:
            first = next(iter(reader))
    except StopIteration as exc:
        raise DataValidationError(f"{path} holds no rows") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"cannot read {path} as CSV: {' '.join(str(exc).split())}") from exc
    numeric = [
        c for c in first.columns if pd.api.types.is_numeric_dtype(first[c]) and not pd.api.types.is_bool_dtype(first[c])
    ]
    return pa.schema([pa.field(str(c), pa.float64() if c in numeric else pa.string()) for c in first.columns])


def _csv_batches(
    path: Path, schema: pa.Schema, columns: Sequence[str] | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import pandas as pd

    wanted = schema if columns is None else pa.schema([schema.field(c) for c in columns])
    text = {f.name: "string" for f in wanted if pa.types.is_string(f.type)}
    try:
        with _csv_chunks(path, batch_rows, [f.name for f in wanted], text) as reader:
            for chunk in reader:
                for f in wanted:
                    if pa.types.is_floating(f.type):
                        # text in a numeric column (e.g. "?") is a missing value, as a blank is
                        chunk[f.name] = pd.to_numeric(chunk[f.name], errors="coerce").astype(float)
                yield pa.RecordBatch.from_pandas(chunk[[f.name for f in wanted]], schema=wanted, preserve_index=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise DataValidationError(f"cannot read {path} as CSV: {' '.join(str(exc).split())}") from exc
