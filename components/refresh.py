"""Refresh component: data drift between the training reference and current data."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from kfp_rai._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def detect_drift(
    reference: Input[Dataset],
    current: Input[Dataset],
    policy: str,
    report: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    model: Input[Model] = None,
) -> NamedTuple("DriftOutputs", status=str, passed=bool, reason=str, drift_detected=bool):
    """Refresh stage: per-column drift of the current data against the training reference.

    Numeric columns: PSI over the reference's quantile bins (KS test reported); categorical: chi-square
    with a Jensen-Shannon distance floor. Identifier columns are never compared. Too few current rows
    is not judged, never "no drift". drift_detected drives retraining.

    Args:
        reference: The data the model was trained on (the training split).
        current: The data the model sees now.
        policy: YAML text of a kfp-rai policy (its drift section); empty uses the defaults.
        model: The model trained on the reference data (optional): the report names it as its subject.

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
    from kfp_rai.core.model_dir import read_model_metadata
    from kfp_rai.core.report import Subject
    from kfp_rai.core.tables import read_table
    from kfp_rai.policy import Policy
    from kfp_rai.refresh import detect_drift as detect

    rules = Policy.from_yaml(policy)
    result = detect(
        read_table(reference.path, format="parquet"),
        read_table(current.path, format="parquet"),
        policy=rules.drift,
        identifier_columns=[
            *reference.metadata.get("identifier_columns", []),
            *current.metadata.get("identifier_columns", []),
        ],
    )
    hashes = {"reference": reference.metadata.get("sha256", ""), "current": current.metadata.get("sha256", "")}
    if model is None:
        subject = Subject(data_sha256=hashes, policy_sha256=rules.sha256)
    else:
        subject = model_subject(read_model_metadata(model.path, model.metadata.get("sha256")), rules.sha256, **hashes)
    write_report(result, subject, report.path, report_html.path)
    report.metadata.update(
        lineage(rules.sha256, reference_sha256=hashes["reference"], current_sha256=hashes["current"])
    )
    for name, value in loggable_metrics({f"drift.{c.column}": c.statistic for c in result.columns}).items():
        metrics.log_metric(name, value)
    outputs = namedtuple("DriftOutputs", ["status", "passed", "reason", "drift_detected"])
    return outputs(*gate_outputs(result.verdict), result.drift_detected)
