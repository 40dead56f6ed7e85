"""Mergeable summaries of a data set: what every drift statistic is computed from.

A summary is taken against *bins* fixed by the reference data (``reference_bins``): per numeric
column the reference's quantile edges (exact up to 250,000 values, see :class:`BinsBuilder`),
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kfp_rai.errors import DataValidationError

SKETCH_K = 200
MISSING = "<missing>"  # the label core.groups uses for a missing value
OTHER = "<other>"


def _floats(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A numeric column as float64 and its mask of missing values (null, NaN and +-inf: a value
    off the number line cannot be binned, averaged or sketched)."""
    x = np.asarray(pc.cast(values, pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=float)
    return x, ~np.isfinite(x)


def _finite(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """A numeric column's non-missing values as float64 and how many were missing."""
    x, mask = _floats(values)
    missing = int(np.count_nonzero(mask))
    if missing:
        return x[~mask], missing
    return (x if x.flags.writeable else x.copy()), 0  # Arrow's zero-copy view is read-only: the sketch needs writable


def _mix(positions: np.ndarray) -> np.ndarray:
    """splitmix64 of row positions: a fixed pseudo-random number per row, the same on every run."""
    with np.errstate(over="ignore"):
        z = positions.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


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
        bounds = [f"{e:.3g}" for e in self.edges]
        if not bounds:
            return ("all", MISSING)
        middle = [f"[{a}, {b})" for a, b in zip(bounds, bounds[1:], strict=False)]
        return (f"< {bounds[0]}", *middle, f">= {bounds[-1]}", MISSING)

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
        ok, missing = _finite(values)
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
    """Per-column summaries of one data set (or of the merge of its parts) and its row count."""

    rows: int
    columns: dict[str, ColumnSummary] = field(default_factory=dict)

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
        return DataSummary(self.rows + other.rows, {c: s.merge(other.columns[c]) for c, s in self.columns.items()})

    @property
    def bins(self) -> list[ColumnBins]:
        return [s.bins for s in self.columns.values()]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "kfp_rai.data_summary", "version": 1, "rows": self.rows,
                "columns": [s.to_dict() for s in self.columns.values()]}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataSummary:
        if not isinstance(d, Mapping) or d.get("kind") != "kfp_rai.data_summary":
            raise DataValidationError("not a kfp-rai data summary (expected kind kfp_rai.data_summary)")
        try:
            columns = [ColumnSummary.from_dict(c) for c in d["columns"]]
            return cls(int(d["rows"]), {c.bins.column: c for c in columns})
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


class _Sample:
    """A deterministic pseudo-random sample of a column's values, of bounded size: a row's value is
    kept while its row's hash (:func:`_mix`) has ``level`` leading zero bits, and the level rises
    (halving the sample) whenever more than ``cap`` are kept. Every value is kept while there are
    few; no row order (sorted, periodic) can bias it, and the same data always gives the same sample."""

    def __init__(self, cap: int) -> None:
        self.cap, self.level = cap, 0
        self.values = np.empty(0, dtype=float)
        self.hashes = np.empty(0, dtype=np.uint64)

    def _kept(self, hashes: np.ndarray) -> np.ndarray:
        return (hashes >> np.uint64(64 - self.level)) == 0 if self.level else np.ones(hashes.size, dtype=bool)

    def add(self, values: np.ndarray, hashes: np.ndarray) -> None:
        keep = self._kept(hashes)
        self.values = np.concatenate([self.values, values[keep]])
        self.hashes = np.concatenate([self.hashes, hashes[keep]])
        while self.values.size > self.cap:
            self.level += 1
            keep = self._kept(self.hashes)
            self.values, self.hashes = self.values[keep], self.hashes[keep]


class BinsBuilder:
    """First pass over the reference: per numeric column a deterministic pseudo-random sample
    (:class:`_Sample`: every value up to ``SAMPLE_CAP``, exact quantiles then; beyond, a rank error
    of about 1/sqrt(SAMPLE_CAP) = 0.2%), per categorical column exact category counts; :meth:`bins`
    fixes the bins from them. Deterministic, unlike the randomized KLL sketch: the same reference
    always gets the same bins."""

    SAMPLE_CAP = 250_000
    MAX_LEVELS = 1_000_000  # distinct values of one text column counted exactly in the first pass

    def __init__(self, schema: pa.Schema, columns: Sequence[str]) -> None:
        self.rows = 0
        self.kinds = {c: "numeric" if is_numeric(schema.field(c).type) else "categorical" for c in columns}
        self.samples = {c: _Sample(self.SAMPLE_CAP) for c, k in self.kinds.items() if k == "numeric"}
        # moments, sketch and missing count of each numeric column (the bins come later)
        self.numeric = {c: ColumnSummary.empty(ColumnBins(c, "numeric")) for c in self.samples}
        self.categories: dict[str, dict[str, int]] = {c: {} for c, k in self.kinds.items() if k == "categorical"}
        self.missing = dict.fromkeys(self.categories, 0)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        hashes = _mix(np.arange(self.rows, self.rows + batch.num_rows)) if self.samples else None
        self.rows += batch.num_rows
        for c, sample in self.samples.items():
            x, mask = _floats(batch.column(c))
            ok = x[~mask]
            sample.add(ok, hashes[~mask])  # type: ignore[index]
            self.numeric[c].counts[-1] += int(np.count_nonzero(mask))
            self.numeric[c].add_moments(ok)
        for c, counts in self.categories.items():
            codes, labels = dictionary_codes(batch.column(c))
            for label, n in zip(labels, np.bincount(codes, minlength=len(labels)).tolist(), strict=True):
                if label is None:
                    self.missing[c] += n
                elif n:
                    counts[label] = counts.get(label, 0) + n
            if len(counts) > self.MAX_LEVELS:  # memory stays bounded: this is no category, it is an id
                raise DataValidationError(
                    f"column {c!r} has more than {self.MAX_LEVELS:,} distinct values: an identifier or free text, "
                    "not a category. Leave it out of the comparison (identifier columns) or drop it."
                )

    def summary(self, bins: Sequence[ColumnBins]) -> DataSummary:
        """The reference's summary over ``bins`` (from :meth:`bins`) as far as one pass allows:
        everything but the numeric columns' bin counts (see :func:`summarize_reference`)."""
        out = DataSummary(self.rows)
        for b in bins:
            column = ColumnSummary.empty(b)
            if b.kind == "numeric":
                acc = self.numeric[b.column]
                column.n, column.mean, column.m2 = acc.n, acc.mean, acc.m2
                column.minimum, column.maximum, column.sketch = acc.minimum, acc.maximum, acc.sketch
                column.counts[-1] = acc.counts[-1]
            else:
                counts = self.categories[b.column]
                column.counts[: len(b.categories)] = [counts[k] for k in b.categories]
                column.counts[-2] = sum(counts.values()) - int(column.counts[: len(b.categories)].sum())
                column.counts[-1] = self.missing[b.column]
            out.columns[b.column] = column
        return out

    def bins(self, n_bins: int, category_limit: int) -> list[ColumnBins]:
        out = []
        for c, kind in self.kinds.items():
            if kind == "numeric":
                kept = self.samples[c].values
                if kept.size == 0:
                    raise DataValidationError(f"the reference column {c!r} holds only missing values")
                edges = np.unique(np.quantile(kept, np.linspace(0, 1, n_bins + 1)[1:-1]))
                out.append(ColumnBins(c, "numeric", edges=tuple(float(e) for e in edges)))
            else:
                ranked = sorted(self.categories[c].items(), key=lambda kv: (-kv[1], kv[0]))[:category_limit]
                out.append(ColumnBins(c, "categorical", categories=tuple(sorted(k for k, _ in ranked))))
        return out


def reference_bins(
    schema: pa.Schema,
    columns: Sequence[str],
    batches: Iterable[pa.RecordBatch],
    *,
    n_bins: int,
    category_limit: int,
) -> list[ColumnBins]:
    """The bins of ``columns`` fixed by one pass over the reference data (see :class:`BinsBuilder`)."""
    builder = BinsBuilder(schema, columns)
    for batch in batches:
        builder.add(batch)
    return builder.bins(n_bins, category_limit)


def summarize_reference(
    schema: pa.Schema,
    columns: Sequence[str],
    read: Callable[[list[str]], Iterable[pa.RecordBatch]],
    *,
    n_bins: int,
    category_limit: int,
) -> DataSummary:
    """The reference's summary in two passes: the first fixes the bins and takes everything that
    does not depend on them (moments, sketches, category counts), the second reads only the numeric
    columns to count them over their bins. Equal to ``summarize`` over :func:`reference_bins`."""
    builder = BinsBuilder(schema, columns)
    for batch in read(list(columns)):
        builder.add(batch)
    bins = builder.bins(n_bins, category_limit)
    summary = builder.summary(bins)
    numeric = [b.column for b in bins if b.kind == "numeric"]
    if numeric:
        for batch in read(numeric):
            for c in numeric:
                summary.columns[c].count_bins(_finite(batch.column(c))[0], 0)  # missing: counted in pass 1
    return summary


def summarize(batches: Iterable[pa.RecordBatch], bins: Sequence[ColumnBins]) -> DataSummary:
    """One pass over ``batches``: their summary over ``bins``."""
    summary = DataSummary.empty(bins)
    for batch in batches:
        summary.add(batch)
    return summary
