"""A data file's column names, read and bounded before anything else reads the file: a header of
200,000 columns (or one endless header line) is refused in one line instead of stalling every step
that walks the columns. Imports neither pandas nor pyarrow."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Sequence
from pathlib import Path

from kfp_rai.errors import DataValidationError

# Wider than any tabular model's input (Adult has 15; wide credit data sets a few thousand), narrow
# enough that per-column work (personal-data screening, summaries, reports) stays within seconds.
MAX_COLUMNS = 10_000
MAX_HEADER_BYTES = 4 << 20  # 10,000 names of 400 characters


def check_width(names: Sequence[str], where: object) -> None:
    """Refuse a data set with more than :data:`MAX_COLUMNS` columns."""
    if len(names) > MAX_COLUMNS:
        raise DataValidationError(
            f"{where} has {len(names):,} columns, more than the {MAX_COLUMNS:,} kfp-rai reads: "
            "select the columns the model needs first"
        )


def csv_header(path: Path) -> list[str]:
    """The names in a CSV (or .csv.gz) file's first line, refused past the bounds; [] when empty."""
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with opener(path, "rb") as raw:
        line = raw.readline(MAX_HEADER_BYTES + 1)
    if len(line) > MAX_HEADER_BYTES and not line.endswith(b"\n"):
        raise DataValidationError(
            f"{path}'s header line is over {MAX_HEADER_BYTES >> 20} MiB: not a data file kfp-rai reads "
            f"(at most {MAX_COLUMNS:,} columns)"
        )
    text = line.decode("utf-8", errors="replace")
    names = next(csv.reader(io.StringIO(text), skipinitialspace=True), [])
    check_width(names, path)
    return names
