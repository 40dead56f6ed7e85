"""Refresh component: data drift between the training reference and current data."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from kfp_rai._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def detect_drift(
    reference: Input[Dataset],
    current: Input[Dataset],
    policy: str,
    report: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
) -> NamedTuple("DriftOutputs", drift_detected=bool, reason=str):
    """Per-column drift of ``current`` against ``reference``: PSI for numeric columns, chi-square
    with a Jensen-Shannon distance floor for categorical ones. ``drift_detected`` drives retraining.
    """
    from collections import namedtuple

    from kfp_rai._artifacts import lineage, loggable_metrics, write_report
    from kfp_rai.io import read_table
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
    write_report(result, report.path, html_path=report_html.path)
    report.metadata.update(
        lineage(
            rules,
            reference_sha256=reference.metadata.get("sha256", ""),
            current_sha256=current.metadata.get("sha256", ""),
        )
    )
    for name, value in loggable_metrics({f"drift.{c.column}": c.statistic for c in result.columns}).items():
        metrics.log_metric(name, value)
    return namedtuple("DriftOutputs", ["drift_detected", "reason"])(result.drift_detected, result.reason)
