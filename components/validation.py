"""Validation components: the explainability gate and the performance + fairness gate."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kfp_rai._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def explain_model(
    model: Input[Model],
    data: Input[Dataset],
    sensitive_features: list[str],
    policy: str,
    seed: int,
    report: Output[Artifact],
    report_html: Output[HTML],
) -> NamedTuple("GateOutputs", status=str, passed=bool, reason=str):
    """Explainability gate: SHAP attributions mapped back to input features, and reliance on
    sensitive features judged by the policy.

    TreeExplainer for the tree model (exact tree-path attributions), a bounded permutation explainer
    otherwise; global and per-group importance on a seeded sample.

    Args:
        model: The trained model (from train_model).
        data: Data to explain it on, usually the held-out test split.
        sensitive_features: Columns holding the attributes importance is broken down by.
        policy: YAML text of a kfp-rai policy (its explainability section); empty uses the defaults.
        seed: Random seed of the sample explained.

    Returns:
        status: The verdict: passed, warning, or failed when sensitive features carry more attribution than
            allowed.
        passed: True when the model may go on (passed or warning).
        reason: One line: the top features and the sensitive features' share of attribution.
        report: The report as JSON (verdict, findings, importance, per-group importance, subject).
        report_html: The report as a self-contained HTML page with a chart.
    """
    from collections import namedtuple

    from kfp_rai.core.evidence import gate_outputs, lineage, model_subject, write_report
    from kfp_rai.core.model_dir import load_model_dir
    from kfp_rai.core.tables import read_table
    from kfp_rai.explainability import explain_model as explain
    from kfp_rai.policy import Policy

    rules = Policy.from_yaml(policy)
    fitted, meta = load_model_dir(model.path, model.metadata.get("sha256"))
    result = explain(
        fitted,
        read_table(data.path, format="parquet"),
        features=meta["features"],
        sensitive_features=sensitive_features,
        policy=rules.explainability,
        seed=seed,
    )
    subject = model_subject(meta, rules.sha256, explained=data.metadata.get("sha256", ""))
    write_report(result, subject, report.path, html_path=report_html.path)
    report.metadata.update(lineage(rules.sha256, model_sha256=meta["sha256"]))
    return namedtuple("GateOutputs", ["status", "passed", "reason"])(*gate_outputs(result.verdict))


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
    explanation: Input[Artifact] = None,
    fail_on_violation: bool = False,
) -> NamedTuple("GateOutputs", status=str, passed=bool, reason=str):
    """Validation gate: performance and per-group fairness on held-out data, judged by the policy.

    Accuracy, ROC AUC, selection rate, TPR and FPR overall and per group of each sensitive attribute
    and their intersection (fairlearn's definitions), with bootstrap intervals; demographic-parity
    difference and ratio and equalized-odds difference checked against the policy. Fails closed on
    groups below the minimum size and metrics that cannot be computed. With an explanation, its
    verdict is part of this one: this is the validation stage's verdict.

    Args:
        model: The trained model (from train_model).
        test: Held-out data (from split_dataset).
        target: The label column.
        positive_label: The favourable value of the label.
        sensitive_features: Columns holding the attributes fairness is judged on.
        policy: YAML text of a kfp-rai policy (its validation section); empty uses the defaults.
        seed: Random seed of the bootstrap.
        explanation: The explainability report (from explain_model); optional.
        fail_on_violation: Raise GateFailedError (fail the task) instead of returning passed=false.

    Returns:
        status: The verdict: passed, warning (violations the policy records only), failed or not_judged.
        passed: True when the model may go on (passed or warning).
        reason: One line naming every finding that did not pass, in full.
        report: The report as JSON (verdict, findings, metrics per group with intervals, subject).
        report_html: The report as a self-contained HTML page with charts.
        metrics: Overall metrics and each attribute's disparities.
        classification_metrics: Confusion matrix and ROC curve on the held-out data.
    """
    from collections import namedtuple

    from kfp_rai.core.evidence import gate_outputs, lineage, loggable_metrics, model_subject, write_report
    from kfp_rai.core.files import read_json
    from kfp_rai.core.model_dir import load_model_dir
    from kfp_rai.core.tables import read_table
    from kfp_rai.core.verdict import Verdict
    from kfp_rai.errors import GateFailedError
    from kfp_rai.policy import Policy
    from kfp_rai.validation import evaluate_model

    rules = Policy.from_yaml(policy)
    fitted, meta = load_model_dir(model.path, model.metadata.get("sha256"))
    result = evaluate_model(
        fitted,
        read_table(test.path, format="parquet"),
        features=meta["features"],
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        policy=rules.validation,
        seed=seed,
        explanation=None if explanation is None else Verdict.from_dict(read_json(explanation.path)),
    )
    test_sha = test.metadata.get("sha256", "")
    write_report(result, model_subject(meta, rules.sha256, test=test_sha), report.path, html_path=report_html.path)
    report.metadata.update(lineage(rules.sha256, model_sha256=meta["sha256"], test_data_sha256=test_sha))
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
    return namedtuple("GateOutputs", ["status", "passed", "reason"])(*gate_outputs(result.verdict))
