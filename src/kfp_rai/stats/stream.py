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
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

from kfp_rai.core.bundled import BUNDLED_PREFIX, load_bundled
from kfp_rai.errors import DataValidationError

BATCH_ROWS = 131_072
_PROGRESS_ROWS = 1_000_000  # below this a pass takes about a second: no bar

Source: TypeAlias = "str | os.PathLike[str] | pd.DataFrame | pa.Table"


@dataclass(frozen=True)
class Batches:
    """A data set to stream: its schema, its row count when known, and how to read it again."""

    name: str
    schema: pa.Schema
    rows: int | None
    _open: Callable[[Sequence[str] | None], Iterator[pa.RecordBatch]]

    def read(self, columns: Sequence[str] | None = None, *, progress: bool | None = None) -> Iterator[pa.RecordBatch]:
        """The record batches (only ``columns`` when given); a progress bar per :func:`show_progress`."""
        batches = self._open(columns)
        if not show_progress(self.rows, progress):
            yield from batches
            return
        from tqdm import tqdm

        with tqdm(total=self.rows, unit="rows", unit_scale=True, desc=self.name, file=sys.stderr) as bar:
            for batch in batches:
                yield batch
                bar.update(batch.num_rows)

    def require(self, columns: Sequence[str], what: str = "data") -> None:
        missing = [c for c in columns if c not in self.schema.names]
        if missing:
            raise DataValidationError(f"the {what} ({self.name}) lacks the columns {missing}")


def show_progress(rows: int | None, asked: bool | None = None) -> bool:
    """Whether to draw a bar: as asked, else only for long inputs on a terminal."""
    if asked is not None:
        return asked
    return bool(sys.stderr.isatty() and (rows is None or rows >= _PROGRESS_ROWS))


def open_batches(source: Source, *, batch_rows: int = BATCH_ROWS) -> Batches:
    """A data set to stream: a DataFrame or Arrow table in memory, ``bundled:<name>``, a parquet or
    CSV file, or a directory of parquet files (partitions, read in name order).

    Raises
    ------
    DataValidationError
        The source is missing, of an unknown format, unreadable, or holds no columns.
    """
    if isinstance(source, pd.DataFrame):
        source = pa.Table.from_pandas(source, preserve_index=False)
    if isinstance(source, pa.Table):
        table = source
        return Batches("data", table.schema, table.num_rows, lambda cols: _table_batches(table, cols, batch_rows))
    text = str(source)
    if text.startswith(BUNDLED_PREFIX):
        return open_batches(load_bundled(text[len(BUNDLED_PREFIX) :]), batch_rows=batch_rows)
    path = Path(text)
    try:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in {".parquet", ".pq"})
            if not files:
                raise DataValidationError(f"{path} holds no .parquet files: pass a file or a directory of partitions")
            dataset = ds.dataset([str(f) for f in files], format="parquet")
            return Batches(path.name, dataset.schema, dataset.count_rows(), _dataset_reader(dataset, batch_rows))
        if not path.is_file():
            raise DataValidationError(
                f"data not found: {path}. Pass a .parquet or .csv file or a directory of parquet files."
            )
        lower = path.name.lower()
        if lower.endswith((".parquet", ".pq")):
            dataset = ds.dataset(str(path), format="parquet")
            return Batches(path.name, dataset.schema, dataset.count_rows(), _dataset_reader(dataset, batch_rows))
        if lower.endswith((".csv", ".csv.gz")):
            with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 22)) as reader:
                schema = reader.schema
            return Batches(path.name, schema, None, lambda cols: _csv_batches(path, schema, cols, batch_rows))
    except DataValidationError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
    raise DataValidationError(
        f"cannot tell the format of {path}: use .parquet, .csv, .csv.gz or a directory of parquet"
    )


def _table_batches(table: pa.Table, columns: Sequence[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
    yield from (table.select(list(columns)) if columns is not None else table).to_batches(max_chunksize=batch_rows)


def _dataset_reader(dataset: ds.Dataset, batch_rows: int) -> Callable[[Sequence[str] | None], Iterator[Any]]:
    def read(columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        # No read-ahead across files or row groups: memory stays at about one row group.
        try:
            yield from dataset.to_batches(
                columns=list(columns) if columns is not None else None,
                batch_size=batch_rows,
                batch_readahead=1,
                fragment_readahead=1,
            )
        except (pa.ArrowException, OSError) as exc:
            raise DataValidationError(f"cannot read the data: {' '.join(str(exc).split())}") from exc

    return read


def _csv_batches(
    path: Path, schema: pa.Schema, columns: Sequence[str] | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    # Types as inferred from the first block, for every block: a column cannot change type midway.
    convert = pacsv.ConvertOptions(
        column_types=schema, include_columns=list(columns) if columns is not None else None, strings_can_be_null=True
    )
    try:
        with pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=1 << 22), convert_options=convert
        ) as reader:
            for block in reader:
                for start in range(0, block.num_rows, batch_rows):
                    yield block.slice(start, batch_rows)  # zero-copy
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(f"cannot read {path} as CSV: {' '.join(str(exc).split())}") from exc
