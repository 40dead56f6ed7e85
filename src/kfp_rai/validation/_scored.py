"""Fairness of an already-scored data set of any size, from one streamed pass of per-group counts.

The same metrics, intervals, gate and report as the validation stage (:func:`evaluate_model`), but
computed from :class:`~kfp_rai.stats.groups.GroupCounts` (mergeable: partitions can be counted in
parallel KFP tasks and merged), with ROC AUC from score histograms of 10,000 bins (its error is at most half
the share of positive-negative pairs that share a bin: `kfp_rai.stats.groups.roc_auc`). Without a score column
ROC AUC is undefined, so its floor is not judged and the verdict fails closed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kfp_rai.core.groups import INTERSECTION_SEP, MISSING, intersection_name
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import ValidationPolicy
from kfp_rai.stats.bootstrap import bootstrap_counts, rates
from kfp_rai.stats.groups import GroupCounts, roc_auc
from kfp_rai.stats.stream import Source, open_batches
from kfp_rai.stats.summary import dictionary_codes
from kfp_rai.validation._gate import judge_validation
from kfp_rai.validation._metrics import _intervals, fairness_from_counts
from kfp_rai.validation._report import ValidationReport
from kfp_rai.validation._roc import roc_points_from_histogram

OVERALL = "<all rows>"


@dataclass(frozen=True)
class ScoredColumns:
    """Which columns of a scored data set hold what, and which label is positive."""

    target: str
    prediction: str
    sensitive: tuple[str, ...]
    score: str | None = None
    positive_label: str | None = None  # None: the columns are booleans or 0/1

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "prediction": self.prediction, "sensitive": list(self.sensitive),
                "score": self.score, "positive_label": self.positive_label}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScoredColumns:
        return cls(
            str(d["target"]), str(d["prediction"]), tuple(d["sensitive"]), d.get("score"), d.get("positive_label")
        )


def attributes(columns: ScoredColumns) -> list[str]:
    """The attributes counted: each sensitive column, then their intersection (when several)."""
    names = list(columns.sensitive)
    return [*names, intersection_name(names)] if len(names) > 1 else names


def count_scored(source: Source, columns: ScoredColumns) -> dict[str, GroupCounts]:
    """One streamed pass: per attribute (and :data:`OVERALL`), confusion cells and score histograms."""
    if not columns.sensitive:
        raise DataValidationError("name at least one sensitive column (--sensitive)")
    data = open_batches(source)
    needed = [columns.target, columns.prediction, *columns.sensitive, *([columns.score] if columns.score else [])]
    data.require(needed, "scored data")
    totals: dict[str, GroupCounts] = {}
    for batch in data.read(list(dict.fromkeys(needed))):
        add_counts(totals, count_batch(batch, columns))
    return totals  # empty for a data set (or partition) without rows; judge_scored refuses that


def add_counts(totals: dict[str, GroupCounts], part: Mapping[str, GroupCounts]) -> None:
    """Fold one batch's counts into the running totals (exact)."""
    for name, counts in part.items():
        totals[name] = totals[name].merge(counts) if name in totals else counts


def count_batch(batch: pa.RecordBatch | pa.Table, columns: ScoredColumns) -> dict[str, GroupCounts]:
    """One batch's counts per attribute, their intersection and :data:`OVERALL`."""
    y = _positive(batch.column(columns.target), columns.positive_label, columns.target)
    pred = _positive(batch.column(columns.prediction), columns.positive_label, columns.prediction)
    scores = None
    if columns.score:
        try:
            scores = pc.cast(batch.column(columns.score), pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataValidationError(f"column {columns.score!r} must hold probabilities, not text") from exc
    coded = {a: group_codes(batch.column(a)) for a in columns.sensitive}
    per = dict(coded)
    if len(columns.sensitive) > 1:  # intersection: the combinations present, never their full product
        combined = np.zeros(batch.num_rows, dtype=np.int64)
        for a in columns.sensitive:
            combined = combined * len(coded[a][1]) + coded[a][0]
        present, codes = np.unique(combined, return_inverse=True)
        labels = []
        for value in present.tolist():
            parts = []
            for a in reversed(columns.sensitive):
                value, at = divmod(value, len(coded[a][1]))
                parts.append(coded[a][1][at])
            labels.append(INTERSECTION_SEP.join(reversed(parts)))
        per[intersection_name(list(columns.sensitive))] = (codes.reshape(-1), labels)
    per[OVERALL] = (np.zeros(batch.num_rows, dtype=np.int64), [OVERALL])
    out: dict[str, GroupCounts] = {}
    for name, (codes, labels) in per.items():
        try:
            out[name] = GroupCounts.from_codes(name, codes, labels, y, pred, scores)
        except DataValidationError as exc:
            raise DataValidationError(f"column {columns.score!r}: {exc}") from exc
    return out


def group_codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Each row's group as a code into the labels (a missing value is the group ``<missing>``)."""
    codes, labels = dictionary_codes(values)
    named = [MISSING if label is None else label for label in labels]
    if len(set(named)) == len(named):
        return codes, named
    unique = list(dict.fromkeys(named))  # a literal "<missing>" and a null are one group
    return np.array([unique.index(n) for n in named], dtype=np.int64)[codes], unique


def _positive(values: pa.Array | pa.ChunkedArray, positive_label: str | None, name: str) -> np.ndarray:
    if values.null_count:
        raise DataValidationError(
            f"column {name!r} has missing values: every scored row needs a label and a prediction"
        )
    if positive_label is not None:
        return np.asarray(
            pc.equal(pc.cast(values, pa.string()), positive_label).to_numpy(zero_copy_only=False), dtype=np.int64
        )
    if pa.types.is_boolean(values.type) or pa.types.is_integer(values.type):
        out = np.asarray(pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False))
        if out.size and (out.min() < 0 or out.max() > 1):
            raise DataValidationError(f"column {name!r} holds values other than 0 and 1: pass --positive-label")
        return out
    raise DataValidationError(f"column {name!r} holds text labels: pass --positive-label to say which one is positive")


def judge_scored(
    counts: Mapping[str, GroupCounts], columns: ScoredColumns, policy: ValidationPolicy, *, seed: int = 0
) -> ValidationReport:
    """The validation stage's metrics, intervals, gate and report from the counts."""
    if OVERALL not in counts:
        raise DataValidationError("the scored data holds no rows: there is nothing to judge")
    n_boot, confidence = policy.bootstrap_samples, policy.confidence_level
    overall_counts = counts[OVERALL]
    cells = overall_counts.cells
    overall = {k: float(v[0]) for k, v in rates(cells).items()}
    overall["roc_auc"] = roc_auc(overall_counts.scores[0])[0] if overall_counts.scores is not None else float("nan")
    overall_intervals = (
        _intervals(rates(bootstrap_counts(cells, n_boot=n_boot, seed=seed)), confidence, 0) if n_boot else {}
    )
    fairness = []
    for name in attributes(columns):
        c = counts[name]
        aucs = (
            [roc_auc(c.scores[i])[0] for i in range(len(c.labels))]
            if c.scores is not None
            else [float("nan")] * len(c.labels)
        )
        intersectional = name not in columns.sensitive
        fairness.append(
            fairness_from_counts(
                c, aucs=aucs, gated=not intersectional or policy.gate_intersections, intersectional=intersectional,
                n_boot=n_boot, confidence=confidence, seed=seed, min_group_size=policy.min_group_size,
                min_positives=policy.min_positives, min_negatives=policy.min_negatives,
            )
        )  # fmt: skip
    tn, fp, fn, tp = (int(v) for v in cells[0])
    return ValidationReport(
        verdict=judge_validation(overall, overall_intervals, fairness, policy, None),
        rows=int(cells.sum()),
        threshold=policy.threshold,
        overall=overall,
        overall_intervals=overall_intervals,
        fairness=tuple(fairness),
        confusion_matrix=((tn, fp), (fn, tp)),
        roc_curve=roc_points_from_histogram(overall_counts.scores[0]) if overall_counts.scores is not None else {},
        policy=policy.to_dict(),
    )


def scored_fairness(
    source: Source, columns: ScoredColumns, policy: ValidationPolicy | None = None, *, seed: int = 0
) -> ValidationReport:
    """Count ``source`` in one streamed pass and judge it (:func:`count_scored`, :func:`judge_scored`)."""
    return judge_scored(count_scored(source, columns), columns, policy or ValidationPolicy(), seed=seed)


def counts_to_dict(counts: Mapping[str, GroupCounts], columns: ScoredColumns) -> dict[str, Any]:
    return {"kind": "kfp_rai.group_counts", "version": 1, "columns": columns.to_dict(),
            "counts": [c.to_dict() for c in counts.values()]}  # fmt: skip


def counts_from_dict(d: Mapping[str, Any]) -> tuple[dict[str, GroupCounts], ScoredColumns]:
    if not isinstance(d, Mapping) or d.get("kind") != "kfp_rai.group_counts":
        raise DataValidationError("not kfp-rai group counts (expected kind kfp_rai.group_counts)")
    parts = [GroupCounts.from_dict(c) for c in d["counts"]]
    return {p.attribute: p for p in parts}, ScoredColumns.from_dict(d["columns"])


def merge_scored(parts: Sequence[Mapping[str, GroupCounts]]) -> dict[str, GroupCounts]:
    """The counts of the whole from the counts of its parts (exact)."""
    if not parts:
        raise DataValidationError("nothing to merge: no group counts were given")
    parts = [p for p in parts if p]  # an empty partition counts nothing
    if not parts:
        return {}
    out = dict(parts[0])
    for more in parts[1:]:
        if set(more) != set(out):
            raise DataValidationError("cannot merge counts of different attributes")
        out = {name: out[name].merge(more[name]) for name in out}
    return out
