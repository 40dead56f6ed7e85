"""The reference drift is measured against: its summary computed once at training time (stored and
signed with the model, so refresh never re-reads the training data), the choice between that
summary and the reference data, and the current data summarized over the reference's bins."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from kfp_rai.core.model_dir import REFERENCE_FILE, read_model_files
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import DriftPolicy
from kfp_rai.stats.bins import summarize_reference
from kfp_rai.stats.stream import Batches, Source, open_batches
from kfp_rai.stats.summary import DataSummary, summarize


def reference_summary(
    reference: Source | Batches,
    *,
    columns: Sequence[str] | None = None,
    policy: DriftPolicy | None = None,
    identifier_columns: Sequence[str] = (),
) -> DataSummary:
    """The reference's summary for later drift checks: bins from one pass, counts from a second.

    Computed once (at training time, stored and signed with the model), so refresh never re-reads
    the training data. ``columns`` defaults to all but ``identifier_columns``.
    """
    policy = policy or DriftPolicy()
    data = open_batches(reference)
    if columns is None:
        columns = [c for c in data.schema.names if c not in set(identifier_columns)]
    data.require(columns, "reference data")
    try:
        summary = summarize_reference(
            data.schema, columns, data.read, n_bins=policy.bins, category_limit=policy.category_limit
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise DataValidationError(f"cannot summarize the reference data: {' '.join(str(exc).split())}") from exc
    if summary.rows == 0:
        raise DataValidationError("the drift reference data set holds no rows")
    summary.left_out = tuple(c for c in data.schema.names if c not in set(columns))
    _refuse_personal_values(summary)
    return summary


def _refuse_personal_values(summary: DataSummary) -> None:
    """A summary is stored with the model and drawn in every drift report: no category or bin edge
    in it may be an e-mail address, an id, card or account number (however the data got here)."""
    from kfp_rai.discovery import personal_values

    for column, part in summary.columns.items():
        found = personal_values([*part.bins.categories, *part.bins.edges])
        if found:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(found.items()))
            raise DataValidationError(
                f"the reference's column {column} would store personal data in its summary ({kinds}): decide about "
                "it in the policy's privacy.columns (drop or pseudonymize), or leave it out"
            )


def stored_reference(
    model_dir: str | os.PathLike[str], expected_sha256: str | None = None, *, required: bool = True
) -> tuple[DataSummary | None, dict[str, Any]]:
    """The reference summary stored with a model at training time (its signature verified first),
    and the model's metadata. Without one: an error when ``required``, else None."""
    files, meta = read_model_files(model_dir, expected_sha256)
    if REFERENCE_FILE not in files:
        if required:
            raise DataValidationError(
                f"the model at {model_dir} holds no {REFERENCE_FILE}: retrain it with this kfp-rai version, "
                "or pass the reference data"
            )
        return None, meta
    try:
        data = json.loads(files[REFERENCE_FILE])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{REFERENCE_FILE} of the model at {model_dir} is not JSON: {exc}") from exc
    return DataSummary.from_dict(data), meta


@dataclass(frozen=True)
class ReferenceChoice:
    """What refresh compares with: the summary stored with the model, else the reference data."""

    reference: DataSummary | Batches
    identifier_columns: tuple[str, ...]
    model_meta: dict[str, Any] | None
    reference_sha256: str


def choose_reference(
    *,
    model_dir: str | os.PathLike[str] | None,
    model_sha256: str | None,
    reference_path: str | os.PathLike[str] | None,
    reference_meta: dict[str, Any],
) -> ReferenceChoice:
    """The stored summary of the model (verified) when it has one — the training data is then never
    read — else the reference data set (parquet). Neither: one clear error."""
    stored, meta = None, None
    if model_dir is not None:
        stored, meta = stored_reference(model_dir, model_sha256, required=reference_path is None)
    if stored is not None:
        return ReferenceChoice(stored, (), meta, str((meta or {}).get("training_data_sha256", "")))
    if reference_path is None:
        raise DataValidationError("no reference: pass a model with a stored reference summary, or the reference data")
    return ReferenceChoice(
        open_batches(reference_path, format="parquet"),
        tuple(reference_meta.get("identifier_columns", [])),
        meta,
        str(reference_meta.get("sha256", "")),
    )


def summarize_current(current: Source | Batches, reference: DataSummary) -> DataSummary:
    """One streamed pass over the current data, over the reference's bins (of the columns it has)."""
    data = open_batches(current)
    bins = [b for b in reference.bins if b.column in data.schema.names]  # e.g. no label in current data
    if not bins:
        raise DataValidationError(f"the current data ({data.name}) shares no column with the reference")
    columns = [b.column for b in bins]
    try:
        return summarize(data.read(columns), bins)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise DataValidationError(
            f"the current data does not match the reference's column types: {' '.join(str(exc).split())}"
        ) from exc
