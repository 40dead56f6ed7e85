"""Validation component: the performance + fairness gate."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kfp_rai._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def validate_model(
    model: Input[Model],
    test: Input[Dataset],
    target: str,
    positive_label: str,
    sensitive_features: list[str],
    policy: str,
    seed: int,
    report: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    fail_on_violation: bool = False,
) -> NamedTuple("GateOutputs", passed=bool, reason=str):
    """Measure performance and per-group fairness on held-out data and judge it by the policy.

    Accuracy, ROC AUC, selection rate, TPR and FPR overall and per group of each sensitive
    attribute and their intersection (fairlearn definitions), with bootstrap intervals;
    demographic-parity difference and ratio and equalized-odds difference checked against the
    policy. Fails closed on groups below the minimum size or metrics that cannot be computed.
    Writes a JSON report, an HTML report, Metrics, and a confusion matrix + ROC curve.
    """
    from collections import namedtuple

    from kfp_rai._artifacts import lineage, load_model_dir, loggable_metrics, write_report
    from kfp_rai.errors import GateFailedError
    from kfp_rai.io import read_table
    from kfp_rai.policy import Policy
    from kfp_rai.validation import evaluate_model

    rules = Policy.from_yaml(policy)
    fitted, meta = load_model_dir(model.path, model.metadata.get("sha256"))
    df = read_table(test.path, format="parquet")
    result = evaluate_model(
        fitted,
        df,
        features=meta["features"],
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        policy=rules.validation,
        seed=seed,
    )
    write_report(result, report.path, html_path=report_html.path)
    report.metadata.update(
        lineage(rules, model_sha256=meta["sha256"], test_data_sha256=test.metadata.get("sha256", ""))
    )
    logged = loggable_metrics(result.overall)
    for attr, values in result.disparities().items():
        logged.update(loggable_metrics(values, prefix=f"{attr}."))
    for name, value in logged.items():
        metrics.log_metric(name, value)
    classification_metrics.log_confusion_matrix(["negative", "positive"], [list(r) for r in result.confusion_matrix])
    roc = result.roc_curve
    classification_metrics.log_roc_curve(roc["fpr"], roc["tpr"], roc["threshold"])
    if fail_on_violation and not result.passed:
        raise GateFailedError(f"validation: {result.reason}")
    return namedtuple("GateOutputs", ["passed", "reason"])(result.passed, result.reason)
