"""The reference's bins, and its summary in two passes: what a summary is counted over.

The first pass over the reference takes a deterministic sample of each numeric column (quantile
edges from it) and exact category counts, plus everything that does not depend on the bins; the
second counts the numeric columns over their edges (:func:`summarize_reference`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pyarrow as pa

from kfp_rai.errors import DataValidationError
from kfp_rai.stats.summary import (
    ColumnBins,
    ColumnSummary,
    DataSummary,
    dictionary_codes,
    finite_values,
    float_values,
    is_numeric,
)


def _mix(positions: np.ndarray) -> np.ndarray:
    """splitmix64 of row positions: a fixed pseudo-random number per row, the same on every run."""
    with np.errstate(over="ignore"):
        z = positions.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


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
            x, mask = float_values(batch.column(c))
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
                edges = numeric_edges(self.samples[c].values, n_bins)  # all missing: no edges, not judged later
                out.append(ColumnBins(c, "numeric", edges=tuple(float(e) for e in edges)))
            else:
                ranked = sorted(self.categories[c].items(), key=lambda kv: (-kv[1], kv[0]))[:category_limit]
                out.append(ColumnBins(c, "categorical", categories=tuple(sorted(k for k, _ in ranked))))
        return out


def numeric_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Interior bin edges for a numeric column from (a sample of) its values.

    A value that holds at least one bin's share of the rows (zeros of a zero-inflated column, a cap,
    a code), and every value of a column with no more distinct values than bins, gets a bin of its
    own, ``[v, nextafter(v))``: a change in its share moves the statistic, where quantile edges
    would collapse onto it (a column 92% zeros had two bins, ``< 0`` and ``>= 0``, and a PSI of 0
    whatever happened). The remaining values are split at their own quantiles into the bins left.
    """
    if values.size == 0:
        return np.empty(0)
    distinct, counts = np.unique(values, return_counts=True)
    points = distinct if distinct.size <= n_bins else distinct[counts >= values.size / n_bins]
    rest = values[~np.isin(values, points)]
    edges = [*points, *np.nextafter(points, np.inf)]
    if rest.size:
        left = max(n_bins - points.size, 2)
        edges += list(np.quantile(rest, np.linspace(0, 1, left + 1)[1:-1]))
    return np.unique(np.asarray(edges, dtype=float))


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
                summary.columns[c].count_bins(finite_values(batch.column(c))[0], 0)  # missing: counted in pass 1
    return summary
