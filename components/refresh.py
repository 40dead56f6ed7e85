"""Refresh component: data drift between the training reference and current data."""

from typing import List, NamedTuple  # noqa: UP035 - kfp reads typing.List for lists of artifacts

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from kfp_rai._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def detect_drift(
    current: Input[Dataset],
    policy: str,
    report: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    model: Input[Model] = None,
    reference: Input[Dataset] = None,
) -> NamedTuple("DriftOutputs", status=str, passed=bool, reason=str, drift_detected=bool):
    """Refresh stage: per-column drift of the current data against the training reference.

    The reference is the summary stored and signed with the model at training time (the training
    data is never re-read); without a model, a reference data set is summarized here. The current
    data is read in one streamed pass. Numeric columns: PSI over the reference's quantile bins (KS
    statistic and Wasserstein distance from quantile sketches reported); categorical: chi-square with a
    Jensen-Shannon distance floor. Identifier columns are never compared. Too few current rows is not
    judged, never "no drift". drift_detected drives retraining.

    Args:
        current: The data the model sees now.
        policy: YAML text of a kfp-rai policy (its drift section); empty uses the defaults.
        model: The model trained on the reference data: its stored reference summary is the reference, and
            the report names it as its subject.
        reference: The data the model was trained on, for a model without a stored summary (or no model).

    Returns:
        status: The refresh stage's verdict: passed (no drift), warning (drift: retrain) or not_judged (too few
            rows).
        passed: True unless the drift could not be judged.
        reason: One line naming every drifted column and its statistic.
        drift_detected: True when at least one column drifted.
        report: The report as JSON (verdict, findings, per-column statistics and distributions, subject).
        report_html: The report as a self-contained HTML page with a chart per column.
        metrics: drift.<column>: each column's statistic (PSI or chi-square).
    """
    from collections import namedtuple

    from kfp_rai.core.evidence import gate_outputs, lineage, loggable_metrics, model_subject, write_report
    from kfp_rai.core.report import Subject
    from kfp_rai.policy import Policy
    from kfp_rai.refresh import choose_reference
    from kfp_rai.refresh import detect_drift as detect
    from kfp_rai.stats.stream import open_batches

    rules = Policy.from_yaml(policy)
    chosen = choose_reference(
        model_dir=None if model is None else model.path,
        model_sha256=None if model is None else model.metadata.get("sha256"),
        reference_path=None if reference is None else reference.path,
        reference_meta={} if reference is None else dict(reference.metadata),
    )
    result = detect(
        chosen.reference,
        open_batches(current.path, format="parquet"),
        policy=rules.drift,
        identifier_columns=[*current.metadata.get("identifier_columns", []), *chosen.identifier_columns],
    )
    hashes = {"reference": chosen.reference_sha256, "current": current.metadata.get("sha256", "")}
    meta = chosen.model_meta
    if meta is None:
        subject = Subject(data_sha256=hashes, policy_sha256=rules.sha256)
    else:
        subject = model_subject(meta, rules.sha256, **hashes)
    write_report(result, subject, report.path, report_html.path)
    report.metadata.update(
        lineage(rules.sha256, reference_sha256=hashes["reference"], current_sha256=hashes["current"])
    )
    for name, value in loggable_metrics({f"drift.{c.column}": c.statistic for c in result.columns}).items():
        metrics.log_metric(name, value)
    outputs = namedtuple("DriftOutputs", ["status", "passed", "reason", "drift_detected"])
    return outputs(*gate_outputs(result.verdict), result.drift_detected)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def list_partitions(data: Input[Dataset]) -> List[str]:  # noqa: UP006
    """Scale-out: the parquet partitions of a partitioned data set, to fan out over with dsl.ParallelFor.

    Args:
        data: A directory of parquet files (a partitioned data set), or one parquet file.

    Returns:
        Output: The partitions' paths relative to the data set, sorted ("" for a single file).
    """
    from pathlib import Path

    from kfp_rai.errors import DataValidationError
    from kfp_rai.stats.stream import partition_files

    root = Path(data.path)
    if root.is_file():
        return [""]
    parts = [str(p.relative_to(root)) for p in partition_files(root)]
    if not parts:
        raise DataValidationError(f"{root} holds no .parquet files: pass a file or a directory of partitions")
    return parts


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def summarize_partition(data: Input[Dataset], partition: str, model: Input[Model], summary: Output[Artifact]):
    """Scale-out: one partition's summary over the reference bins stored with the model (one streamed pass).

    Args:
        data: The partitioned current data (a directory of parquet files).
        partition: The partition to summarize, relative to data (from list_partitions).
        model: The model whose stored reference summary fixes the bins.

    Returns:
        summary: The partition's summary (JSON): mergeable with the other partitions' by merge_drift.
    """
    import json
    from pathlib import Path

    from kfp_rai.core.files import atomic_write_text
    from kfp_rai.refresh import stored_reference, summarize_current
    from kfp_rai.stats.stream import open_batches

    reference, _ = stored_reference(model.path, model.metadata.get("sha256"))
    path = Path(data.path) / partition if partition else Path(data.path)
    part = summarize_current(open_batches(path, format="parquet"), reference)
    atomic_write_text(summary.path, json.dumps(part.to_dict()))
    summary.metadata.update({"rows": part.rows, "partition": partition})


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def merge_drift(
    summaries: Input[List[Artifact]],  # noqa: UP006
    model: Input[Model],
    policy: str,
    report: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
) -> NamedTuple("DriftOutputs", status=str, passed=bool, reason=str, drift_detected=bool):
    """Scale-out: merge the partitions' summaries (exact) and judge drift as detect_drift does.

    Args:
        summaries: Every partition's summary (dsl.Collected over summarize_partition).
        model: The model whose stored reference summary is the reference.
        policy: YAML text of a kfp-rai policy (its drift section); empty uses the defaults.

    Returns:
        status: The refresh stage's verdict: passed (no drift), warning (drift: retrain) or not_judged (too few
            rows).
        passed: True unless the drift could not be judged.
        reason: One line naming every drifted column and its statistic.
        drift_detected: True when at least one column drifted.
        report: The report as JSON (verdict, findings, per-column statistics and distributions, subject).
        report_html: The report as a self-contained HTML page with a chart per column.
        metrics: drift.<column>: each column's statistic (PSI or chi-square).
    """
    import json
    from collections import namedtuple
    from pathlib import Path

    from kfp_rai.core.evidence import gate_outputs, loggable_metrics, model_subject, write_report
    from kfp_rai.policy import Policy
    from kfp_rai.refresh import drift_between, stored_reference
    from kfp_rai.stats.summary import DataSummary, merge_all

    rules = Policy.from_yaml(policy)
    reference, meta = stored_reference(model.path, model.metadata.get("sha256"))
    current = merge_all([DataSummary.from_dict(json.loads(Path(s.path).read_text())) for s in summaries])
    result = drift_between(reference, current, policy=rules.drift)
    subject = model_subject(meta, rules.sha256, reference=meta.get("training_data_sha256", ""))
    write_report(result, subject, report.path, report_html.path)
    for name, value in loggable_metrics({f"drift.{c.column}": c.statistic for c in result.columns}).items():
        metrics.log_metric(name, value)
    outputs = namedtuple("DriftOutputs", ["status", "passed", "reason", "drift_detected"])
    return outputs(*gate_outputs(result.verdict), result.drift_detected)
