"""The refresh's measurement: what the champion sees now against what it was judged on, in one
streamed pass over the current data (or from serving's traffic summaries): its inputs' drift over
the stored reference bins, the drift of its predictions against those at validation, and, where
labels exist, its performance and per-group fairness on the new rows with intervals."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kfp_rai.errors import DataValidationError
from kfp_rai.policy import Policy
from kfp_rai.refresh._champion import Champion
from kfp_rai.refresh._drift import DriftReport, drift_between
from kfp_rai.refresh._predictions import PredictionSummary
from kfp_rai.stats.groups import GroupCounts
from kfp_rai.stats.stream import Batches, Source, open_batches
from kfp_rai.stats.summary import DataSummary, summarize
from kfp_rai.validation import ValidationReport
from kfp_rai.validation._scored import OVERALL, ScoredColumns, add_counts, count_batch, judge_scored

PREDICTION, SCORE = "__kfp_rai_prediction__", "__kfp_rai_score__"


@dataclass(frozen=True)
class Measured:
    """What one pass over the current data (or traffic summaries) found, before any judgement."""

    source: str  # "data" (rows with features), "traffic" (serving's summaries), "labels" (late labels)
    name: str
    rows: int
    inputs: DataSummary | None
    predictions: PredictionSummary
    counts: dict[str, GroupCounts] | None  # the champion on labelled rows, per group
    sensitive: tuple[str, ...] = ()
    has_features: bool = True  # rows with the model's inputs: a challenger can be trained on them

    @property
    def labelled_rows(self) -> int:
        if not self.counts or OVERALL not in self.counts:
            return 0
        return int(self.counts[OVERALL].cells.sum())


def measure_data(current: Source | Batches, champion: Champion, sensitive: Sequence[str] = ()) -> Measured:
    """One streamed pass over current rows: each batch is counted over the champion's reference bins,
    scored by the champion, and (where it carries the label) counted per group for performance and
    fairness. Rows without a label count for drift only."""
    data = open_batches(current)
    meta = champion.meta
    features = [str(f) for f in meta["features"]]
    missing = [f for f in features if f not in data.schema.names]
    if missing:
        raise DataValidationError(
            f"the current data ({data.name}) lacks the model's inputs {missing}: the champion cannot score it"
        )
    reference = champion.reference
    bins = [b for b in reference.bins if b.column in data.schema.names]
    target, positive = str(meta.get("target", "")), str(meta.get("positive_label", ""))
    labelled = bool(target) and target in data.schema.names
    present = tuple(a for a in sensitive if a in data.schema.names)
    columns = list(dict.fromkeys([*features, *(b.column for b in bins), *present, *([target] if labelled else [])]))
    model, threshold = champion.estimator(), float(meta.get("decision_threshold", 0.5))
    scored = ScoredColumns(target, PREDICTION, present, SCORE, None)
    state: dict[str, Any] = {"predictions": PredictionSummary.of([], threshold), "counts": {}, "rows": 0}

    def passing() -> Iterator[pa.RecordBatch]:
        for batch in data.read(columns):
            if batch.num_rows == 0:
                continue
            scores = np.asarray(model.predict_proba(model_input(batch, features))[:, 1], dtype=float)
            state["predictions"] = state["predictions"].merge(PredictionSummary.of(scores, threshold))
            state["rows"] += batch.num_rows
            if labelled:
                _count_labelled(state["counts"], batch, target, positive, scores, threshold, scored)
            yield batch

    try:
        inputs = summarize(passing(), bins)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise DataValidationError(
            f"the current data does not match the champion's column types: {' '.join(str(exc).split())}"
        ) from exc
    return Measured(
        "data", data.name, state["rows"], inputs, state["predictions"], state["counts"] if labelled else None, present
    )


def model_input(batch: pa.RecordBatch, features: Sequence[str]) -> Any:
    """A batch's model inputs as the model was trained on them: plain text (parquet's dictionary
    encoding decoded: a pandas Categorical would be encoded otherwise), a missing value None."""
    columns = []
    for name in features:
        column = batch.column(name)
        columns.append(column.dictionary_decode() if pa.types.is_dictionary(column.type) else column)
    return pa.RecordBatch.from_arrays(columns, names=list(features)).to_pandas()


def _count_labelled(
    totals: dict[str, GroupCounts],
    batch: pa.RecordBatch,
    target: str,
    positive: str,
    scores: np.ndarray,
    threshold: float,
    columns: ScoredColumns,
) -> None:
    label = batch.column(target)
    known = pc.invert(pc.is_null(label)).to_numpy(zero_copy_only=False)
    if not known.any():
        return
    y = np.asarray(pc.equal(pc.cast(label, pa.string()), positive).to_numpy(zero_copy_only=False))
    table = pa.table(
        {
            target: pa.array(y.astype(np.int64)),
            PREDICTION: pa.array((scores >= threshold).astype(np.int64)),
            SCORE: pa.array(scores),
            **{a: batch.column(a) for a in columns.sensitive},
        }
    ).filter(pa.array(known))
    add_counts(totals, count_batch(table, columns))


def input_drift(measured: Measured, champion: Champion, policy: Policy) -> DriftReport | None:
    """Drift of the champion's inputs (and of the sensitive attributes and the label where the
    current data has them) against its stored reference. A model input the current data lacks is
    not judged: the verdict fails closed rather than skipping it."""
    if measured.inputs is None:
        return None
    reference = champion.reference
    features = [str(f) for f in champion.meta["features"]]
    optional = [c for c in reference.columns if c not in features and c in measured.inputs.columns]
    columns = [c for c in features if c in reference.columns] + optional
    current = DataSummary(measured.inputs.rows, {c: v for c, v in measured.inputs.columns.items() if c in columns})
    judged = DataSummary(reference.rows, {c: reference.columns[c] for c in columns})
    return drift_between(judged, current, policy=policy.drift)


def champion_performance(measured: Measured, policy: Policy, seed: int) -> ValidationReport | None:
    """The champion's performance and per-group fairness on the labelled current rows, judged by the
    validation policy's limits (the same metrics, intervals and rules as at validation)."""
    if not measured.counts or OVERALL not in measured.counts:
        return None
    columns = ScoredColumns("y", PREDICTION, measured.sensitive, SCORE, None)
    return judge_scored(measured.counts, columns, policy.validation, seed=seed)


def is_traffic(current: Any) -> bool:
    """Whether ``current`` is a directory of serving's traffic summaries."""
    from pathlib import Path

    from kfp_rai.refresh._traffic import PATTERN

    path = Path(str(current)) if isinstance(current, (str, os.PathLike)) and "://" not in str(current) else None
    return bool(path is not None and path.is_dir() and any(path.glob(PATTERN)))


def measure_current(
    current: Source | Batches,
    champion: Champion,
    sensitive: Sequence[str] = (),
    *,
    labels: str = "",
    audit_log: str = "",
    audit_key: bytes | None = None,
    hmac_key: bytes | None = None,
) -> Measured:
    """What the champion sees now, from rows (:func:`measure_data`) or from serving's traffic
    summaries, where late ``labels`` joined with the ``audit_log``'s scores measure its
    performance and fairness on what it served."""
    from kfp_rai.refresh._traffic import late_labels, merge_windows, read_windows

    if not is_traffic(current):
        if labels:
            raise DataValidationError(
                "late labels are joined with what serving scored: give the directory of its traffic summaries as "
                "the current data (a labelled batch carries its labels in its rows)"
            )
        return measure_data(current, champion, sensitive)
    if audit_key is None:
        raise DataValidationError(
            "traffic summaries are keyed with the serving audit key: set KFP_RAI_AUDIT_KEY_FILE (or KFP_RAI_AUDIT_KEY)"
        )
    windows = read_windows(current, audit_key, str(champion.meta["sha256"]))  # type: ignore[arg-type]
    inputs, predictions, span = merge_windows(windows)
    counts = None
    if labels:
        if not audit_log:
            raise DataValidationError("late labels need the audit log the scores are in: --audit-log FILE")
        if hmac_key is None:
            raise DataValidationError(
                "late labels are joined by the pseudonymized request id: set KFP_RAI_HMAC_KEY_FILE (the key serving "
                "used)"
            )
        counts, _ = late_labels(
            audit_log, labels, model=champion.meta, sensitive=sensitive, audit_key=audit_key, hmac_key=hmac_key
        )
    present = tuple(a for a in sensitive if counts and a in counts)
    name = f"{span['windows']} traffic window(s) from {span['from']} to {span['to']}"
    return Measured("traffic", name, inputs.rows, inputs, predictions, counts or None, present, has_features=False)
