"""Mergeable summaries of a data set: what every drift statistic is computed from.

A summary is taken against *bins* fixed by the reference data (:mod:`kfp_rai.stats.bins`): per
numeric column the reference's quantile edges (exact up to 250,000 values),
per categorical column the reference's most frequent categories (at most ``category_limit``;
every other value is counted as ``other``). Over those bins a summary holds

- numeric: counts per bin, missing values, exact count / mean / variance (Chan et al.'s parallel
  update) / min / max, and an Apache DataSketches KLL quantile sketch (for KS and Wasserstein);
- categorical: counts per kept category, ``other`` and missing.

``merge`` adds counts and combines moments exactly, so merging the summaries of a data set's
partitions gives the summary of the whole (property-tested). Only the KLL sketch is approximate:
its normalized rank error is at most ``sketch.normalized_rank_error(False)`` (about 1.3% for the
default k = 200, with 99% confidence) whether built in one pass or merged; benchmarks/RESULTS.md
measures its KS and Wasserstein error against scipy's exact values on the benchmark data.
Summaries serialize to JSON (the sketch as base64), so they can be stored, signed with a model, and
passed between pipeline tasks.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kfp_rai.errors import DataValidationError

SKETCH_K = 200
MISSING = "<missing>"  # the label core.groups uses for a missing value
OTHER = "<other>"


def float_values(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A numeric column as float64 and its mask of missing values (null, NaN and +-inf: a value
    off the number line cannot be binned, averaged or sketched)."""
    x = np.asarray(pc.cast(values, pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=float)
    return x, ~np.isfinite(x)


def finite_values(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """A numeric column's non-missing values as float64 and how many were missing."""
    x, mask = float_values(values)
    missing = int(np.count_nonzero(mask))
    if missing:
        return x[~mask], missing
    return (x if x.flags.writeable else x.copy()), 0  # Arrow's zero-copy view is read-only: the sketch needs writable


def dictionary_codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[str | None]]:
    """Each value as an integer code into ``labels`` (its text; None for a missing value), through
    Arrow's dictionary encoding: a column read from parquet as a dictionary is not re-hashed."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    at: dict[str | None, int] = {}  # label -> code, in order of first sight
    parts = []
    for chunk in chunks:
        if not pa.types.is_dictionary(chunk.type):
            if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
                chunk = pc.cast(chunk, pa.string())
            chunk = chunk.dictionary_encode()
        words = chunk.dictionary
        if not (pa.types.is_string(words.type) or pa.types.is_large_string(words.type)):
            words = pc.cast(words, pa.string())
        local = [*words.to_pylist(), None]  # the last: missing
        remap = np.array([at.setdefault(w, len(at)) for w in local], dtype=np.int64)
        indices = chunk.indices.fill_null(len(local) - 1) if chunk.null_count else chunk.indices
        parts.append(remap[np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)])
    codes = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return codes, list(at)


def _kll() -> Any:
    from datasketches import kll_doubles_sketch

    return kll_doubles_sketch


@dataclass(frozen=True)
class ColumnBins:
    """How one column is counted: numeric interior edges, or the kept categories."""

    column: str
    kind: str  # "numeric" | "categorical"
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    def labels(self) -> tuple[str, ...]:
        """The bins' names, in count order, ending with ``missing`` (and ``other`` before it)."""
        if self.kind == "categorical":
            return (*self.categories, OTHER, MISSING)
        e = self.edges
        if not e:
            return ("all", MISSING)

        def exact(i: int) -> bool:  # the bin from e[i] to e[i + 1] holds the one value e[i]: a mass point
            return bool(np.nextafter(e[i], np.inf) == e[i + 1])

        def low(i: int) -> str:  # a bin right after a mass point p starts just above p: "(p, ..."
            return f"({e[i - 1]:.3g}" if i and exact(i - 1) else f"[{e[i]:.3g}"

        out = [f"< {e[0]:.3g}"]
        out += [f"= {e[i]:.3g}" if exact(i) else f"{low(i)}, {e[i + 1]:.3g})" for i in range(len(e) - 1)]
        out.append(f"> {e[-2]:.3g}" if len(e) > 1 and exact(len(e) - 2) else f">= {e[-1]:.3g}")
        return (*out, MISSING)

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "edges": list(self.edges),
            "categories": list(self.categories),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnBins:
        return cls(str(d["column"]), str(d["kind"]), tuple(map(float, d["edges"])), tuple(map(str, d["categories"])))


@dataclass
class ColumnSummary:
    """One column's counts over its bins (the last is missing) and, if numeric, moments and sketch."""

    bins: ColumnBins
    counts: np.ndarray
    n: int = 0  # non-missing values
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    minimum: float = float("inf")
    maximum: float = float("-inf")
    sketch: Any = None

    @classmethod
    def empty(cls, bins: ColumnBins, k: int = SKETCH_K) -> ColumnSummary:
        width = len(bins.edges) + 2 if bins.kind == "numeric" else len(bins.categories) + 2
        sketch = _kll()(k) if bins.kind == "numeric" else None
        return cls(bins, np.zeros(width, dtype=np.int64), sketch=sketch)

    @property
    def missing(self) -> int:
        return int(self.counts[-1])

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1) of the non-missing values; NaN below two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else float("nan")

    def add(self, values: pa.Array | pa.ChunkedArray) -> None:
        """Count one batch of this column's values."""
        if self.bins.kind == "numeric":
            self._add_numeric(values)
        else:
            self._add_categorical(values)

    def _add_numeric(self, values: pa.Array | pa.ChunkedArray) -> None:
        ok, missing = finite_values(values)
        self.count_bins(ok, missing)
        self.add_moments(ok)

    def count_bins(self, ok: np.ndarray, missing: int) -> None:
        """Count non-missing values ``ok`` over the bins, and ``missing`` missing ones."""
        edges = np.asarray(self.bins.edges, dtype=float)
        self.counts[:-1] += np.bincount(np.searchsorted(edges, ok, side="right"), minlength=len(edges) + 1)
        self.counts[-1] += missing

    def add_moments(self, ok: np.ndarray) -> None:
        """Fold non-missing values into count, mean, variance, min, max and the sketch."""
        if ok.size:
            n_b, mean_b = ok.size, float(ok.mean())
            d = ok - mean_b
            self._combine(n_b, mean_b, float(d @ d), float(ok.min()), float(ok.max()))
            self.sketch.update(ok)

    def _add_categorical(self, values: pa.Array | pa.ChunkedArray) -> None:
        codes, labels = dictionary_codes(values)
        kept = {c: i for i, c in enumerate(self.bins.categories)}
        other, missing = len(self.bins.categories), len(self.bins.categories) + 1
        position = np.array([missing if w is None else kept.get(w, other) for w in labels], dtype=np.int64)
        if codes.size:
            self.counts += np.bincount(position[codes], minlength=len(self.counts))

    def _combine(self, n_b: int, mean_b: float, m2_b: float, min_b: float, max_b: float) -> None:
        n_a = self.n
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / n
        self.m2 = self.m2 + m2_b + delta * delta * n_a * n_b / n
        self.n = n
        self.minimum, self.maximum = min(self.minimum, min_b), max(self.maximum, max_b)

    def merge(self, other: ColumnSummary) -> ColumnSummary:
        """The summary of both data sets (exact but for the sketch, see the module doc)."""
        if other.bins != self.bins:
            raise DataValidationError(
                f"cannot merge summaries of {self.bins.column!r} taken over different bins: summarize every "
                "part against the same reference bins"
            )
        out = ColumnSummary(
            self.bins, self.counts + other.counts, self.n, self.mean, self.m2, self.minimum, self.maximum
        )
        if other.n:
            out._combine(other.n, other.mean, other.m2, other.minimum, other.maximum)
        if self.sketch is not None:
            out.sketch = _kll().deserialize(self.sketch.serialize())
            out.sketch.merge(other.sketch)
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"bins": self.bins.to_dict(), "counts": self.counts.tolist()}
        if self.bins.kind == "numeric":
            d |= {"n": self.n, "mean": self.mean, "m2": self.m2}
            d |= {"min": self.minimum if self.n else None, "max": self.maximum if self.n else None}
            d["kll"] = base64.b64encode(self.sketch.serialize()).decode("ascii")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnSummary:
        bins = ColumnBins.from_dict(d["bins"])
        counts = np.asarray(d["counts"], dtype=np.int64)
        if bins.kind != "numeric":
            return cls(bins, counts)
        n = int(d["n"])
        low = float(d["min"]) if n else float("inf")
        high = float(d["max"]) if n else float("-inf")
        sketch = _kll().deserialize(base64.b64decode(d["kll"]))
        return cls(bins, counts, n, float(d["mean"]), float(d["m2"]), low, high, sketch)


@dataclass
class DataSummary:
    """Per-column summaries of one data set (or of the merge of its parts) and its row count.
    ``left_out`` names the data's columns deliberately not summarized (identifiers, columns not
    chosen): a later drift check skips them, while a column the data never had is not judged."""

    rows: int
    columns: dict[str, ColumnSummary] = field(default_factory=dict)
    left_out: tuple[str, ...] = ()

    @classmethod
    def empty(cls, bins: Iterable[ColumnBins]) -> DataSummary:
        return cls(0, {b.column: ColumnSummary.empty(b) for b in bins})

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        for name, summary in self.columns.items():
            summary.add(batch.column(name))
        self.rows += batch.num_rows

    def merge(self, other: DataSummary) -> DataSummary:
        if set(self.columns) != set(other.columns):
            raise DataValidationError(
                f"cannot merge summaries of different columns: {sorted(set(self.columns) ^ set(other.columns))}"
            )
        return DataSummary(
            self.rows + other.rows,
            {c: s.merge(other.columns[c]) for c, s in self.columns.items()},
            tuple(dict.fromkeys([*self.left_out, *other.left_out])),
        )

    @property
    def bins(self) -> list[ColumnBins]:
        return [s.bins for s in self.columns.values()]

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": "kfp_rai.data_summary", "version": 1, "rows": self.rows,
               "columns": [s.to_dict() for s in self.columns.values()]}  # fmt: skip
        return {**out, "left_out": list(self.left_out)} if self.left_out else out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataSummary:
        if not isinstance(d, Mapping) or d.get("kind") != "kfp_rai.data_summary":
            raise DataValidationError("not a kfp-rai data summary (expected kind kfp_rai.data_summary)")
        try:
            columns = [ColumnSummary.from_dict(c) for c in d["columns"]]
            left_out = tuple(str(c) for c in d.get("left_out", []))
            return cls(int(d["rows"]), {c.bins.column: c for c in columns}, left_out)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            raise DataValidationError(f"a damaged kfp-rai data summary: {exc}") from exc


def merge_all(summaries: Sequence[DataSummary]) -> DataSummary:
    """The merge of several summaries (in any order: merging is associative and commutative)."""
    if not summaries:
        raise DataValidationError("nothing to merge: no summaries were given")
    out = summaries[0]
    for more in summaries[1:]:
        out = out.merge(more)
    return out


def is_numeric(type_: pa.DataType) -> bool:
    return bool(pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_))


def summarize(batches: Iterable[pa.RecordBatch], bins: Sequence[ColumnBins]) -> DataSummary:
    """One pass over ``batches``: their summary over ``bins``."""
    summary = DataSummary.empty(bins)
    for batch in batches:
        summary.add(batch)
    return summary
