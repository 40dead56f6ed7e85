"""Validation components: the explainability gate and the performance + fairness gate."""

from typing import List, NamedTuple  # noqa: UP035 - kfp reads typing.List for lists of artifacts

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
    datasheet: Input[Artifact] = None,
) -> NamedTuple("GateOutputs", status=str, passed=bool, reason=str):
    """Explainability gate: SHAP attributions mapped back to input features, and reliance on
    sensitive features and on their proxies judged by the policy.

    TreeExplainer for the tree model (exact tree-path attributions), a bounded permutation explainer
    otherwise; global and per-group importance on a seeded sample. Proxies (features standing in
    for a sensitive attribute) come from the datasheet; without one they are measured on data.

    Args:
        model: The trained model (from train_model).
        data: Data to explain it on, usually the held-out test split.
        sensitive_features: Columns holding the attributes importance is broken down by.
        policy: YAML text of a kfp-rai policy (its explainability section); empty uses the defaults.
        seed: Random seed of the sample explained.
        datasheet: The datasheet (from write_datasheet) whose proxies are counted; optional.

    Returns:
        status: The verdict: passed, warning, or failed when sensitive features, or they and their proxies,
            carry more attribution than allowed.
        passed: True when the model may go on (passed or warning).
        reason: One line: the top features and the sensitive features' share of attribution.
        report: The report as JSON (verdict, findings, importance, per-group importance, subject).
        report_html: The report as a self-contained HTML page with a chart.
    """
    import json
    from collections import namedtuple

    from kfp_rai.core.evidence import gate_outputs, lineage, model_subject, write_report
    from kfp_rai.core.model_dir import load_model_dir
    from kfp_rai.core.tables import read_table
    from kfp_rai.discovery import known_proxies
    from kfp_rai.explainability import explain_model as explain
    from kfp_rai.policy import Policy

    rules = Policy.from_yaml(policy)
    fitted, meta = load_model_dir(model.path, model.metadata.get("sha256"))
    df = read_table(data.path, format="parquet")
    sheet = None
    if datasheet is not None:
        with open(datasheet.path, encoding="utf-8") as f:
            sheet = json.load(f)
    proxies, source = known_proxies(
        df,
        sensitive_features=sensitive_features,
        features=meta["features"],
        threshold=rules.proxies.threshold,
        datasheet=sheet,
    )
    result = explain(
        fitted,
        df,
        features=meta["features"],
        sensitive_features=sensitive_features,
        policy=rules.explainability,
        seed=seed,
        proxies=proxies,
        proxy_source=source,
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
    prediction_reference: Output[Artifact],
    explanation: Input[Artifact] = None,
    reviewer: str = "",
    fail_on_violation: bool = False,
) -> NamedTuple("GateOutputs", status=str, passed=bool, reason=str):
    """Validation gate: performance and per-group fairness on held-out data, judged by the policy.

    Accuracy, ROC AUC, selection rate, TPR and FPR overall and per group of each sensitive attribute
    and their intersection (fairlearn's definitions), with bootstrap intervals; demographic-parity
    difference and ratio and equalized-odds difference checked against the policy. Fails closed on
    groups below the minimum size and metrics that cannot be computed. With an explanation, its
    verdict is part of this one; with a reviewer file, each figure a person computed is compared
    with ours (beyond validation.reviewer_tolerance, or on other data, it fails): this is the
    validation stage's verdict.

    Args:
        model: The trained model (from train_model).
        test: Held-out data (from split_dataset).
        target: The label column.
        positive_label: The favourable value of the label.
        sensitive_features: Columns holding the attributes fairness is judged on.
        policy: YAML text of a kfp-rai policy (its validation section); empty uses the defaults.
        seed: Random seed of the bootstrap.
        explanation: The explainability report (from explain_model); optional.
        reviewer: YAML text of a reviewer file (who, role, date, the test data's sha256, the metrics they computed);
            empty: no human check.
        fail_on_violation: Raise GateFailedError (fail the task) instead of returning passed=false.

    Returns:
        status: The verdict: passed, warning (violations the policy records only), failed or not_judged.
        passed: True when the model may go on (passed or warning).
        reason: One line naming every finding that did not pass, in full.
        report: The report as JSON (verdict, findings, metrics per group with intervals, subject).
        report_html: The report as a self-contained HTML page with charts.
        metrics: Overall metrics and each attribute's disparities.
        classification_metrics: Confusion matrix and ROC curve on the held-out data.
        prediction_reference: The model's scores on the held-out rows (a histogram) and its share of positive
            predictions: stored with the registered version, the reference of prediction drift.
    """
    from collections import namedtuple

    from kfp_rai.core.evidence import gate_outputs, lineage, loggable_metrics, model_subject, write_report
    from kfp_rai.core.files import read_json, write_json
    from kfp_rai.core.model_dir import load_model_dir
    from kfp_rai.core.tables import read_table
    from kfp_rai.core.verdict import Verdict
    from kfp_rai.errors import GateFailedError
    from kfp_rai.policy import Policy
    from kfp_rai.validation import ReviewerFile, compare_with_reviewer, evaluate_model

    rules = Policy.from_yaml(policy)
    checked_by = ReviewerFile.from_yaml(reviewer) if reviewer.strip() else None
    fitted, meta = load_model_dir(model.path, model.metadata.get("sha256"))
    held_out = read_table(test.path, format="parquet")
    result = evaluate_model(
        fitted,
        held_out,
        features=meta["features"],
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        policy=rules.validation,
        seed=seed,
        explanation=None if explanation is None else Verdict.from_dict(read_json(explanation.path)),
    )
    test_sha = test.metadata.get("sha256", "")
    if checked_by is not None:
        result = compare_with_reviewer(
            result, checked_by, data_sha256=test_sha, tolerance=rules.validation.reviewer_tolerance
        )
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
    from kfp_rai.refresh import PredictionSummary

    scores = fitted.predict_proba(held_out[meta["features"]])[:, 1]
    summary = PredictionSummary.of(scores, float(meta.get("decision_threshold", rules.validation.threshold)))
    write_json(prediction_reference.path, summary.to_dict())
    prediction_reference.metadata.update({"model_sha256": meta["sha256"], "rows": summary.rows})
    if fail_on_violation and not result.passed:
        raise GateFailedError(f"validation: {result.reason}")
    return namedtuple("GateOutputs", ["status", "passed", "reason"])(*gate_outputs(result.verdict))


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def count_scored_partition(
    data: Input[Dataset],
    partition: str,
    target: str,
    prediction: str,
    sensitive_features: list,
    counts: Output[Artifact],
    score: str = "",
    positive_label: str = "",
    policy: str = "",
):
    """Scale-out: one partition of a scored data set as per-group confusion cells and score histograms.

    Args:
        data: The partitioned scored data (a directory of parquet files).
        partition: The partition to count, relative to data (from list_partitions).
        target: The true label column.
        prediction: The predicted label column.
        sensitive_features: The sensitive attribute columns (their intersection is counted too).
        score: The predicted probability column (for ROC AUC); empty: none.
        positive_label: The positive label when target and prediction are text; empty: they are 0/1.
        policy: YAML text of a kfp-rai policy (its privacy decisions); empty uses the defaults.

    Returns:
        counts: The partition's counts (JSON): mergeable with the other partitions' by merge_fairness.
    """
    import json
    from pathlib import Path

    from kfp_rai.core.files import atomic_write_text
    from kfp_rai.discovery import screen_stream
    from kfp_rai.policy import Policy
    from kfp_rai.stats.stream import open_batches
    from kfp_rai.validation._scored import ScoredColumns, count_scored, counts_to_dict

    columns = ScoredColumns(target, prediction, tuple(sensitive_features), score or None, positive_label or None)
    path = Path(data.path) / partition if partition else Path(data.path)
    batches = open_batches(path, format="parquet")
    # the classes and groups counted become the report's labels: personal data in them is refused
    used = list(dict.fromkeys([target, prediction, *sensitive_features]))
    batches.require(used, "scored data")
    screen_stream(batches, used, decisions=Policy.from_yaml(policy).privacy.decisions, protected=used)
    part = count_scored(batches, columns)
    atomic_write_text(counts.path, json.dumps(counts_to_dict(part, columns)))
    counts.metadata.update({"partition": partition})


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def merge_fairness(
    counts: Input[List[Artifact]],  # noqa: UP006
    policy: str,
    report: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    seed: int = 0,
) -> NamedTuple("GateOutputs", status=str, passed=bool, reason=str):
    """Scale-out: merge the partitions' counts (exact) and judge them as validate_model does.

    Args:
        counts: Every partition's counts (dsl.Collected over count_scored_partition).
        policy: YAML text of a kfp-rai policy (its validation section); empty uses the defaults.
        seed: Bootstrap seed.

    Returns:
        status: The validation verdict on the scored data: passed, warning, failed or not_judged.
        passed: True when passed or warning.
        reason: One line naming every failed check.
        report: The report as JSON (overall and per-group metrics with bootstrap intervals, verdict).
        report_html: The report as a self-contained HTML page with charts.
        metrics: Overall metrics and each attribute's disparities.
    """
    import json
    from collections import namedtuple
    from pathlib import Path

    from kfp_rai.core.evidence import gate_outputs, loggable_metrics, write_report
    from kfp_rai.core.report import Subject
    from kfp_rai.policy import Policy
    from kfp_rai.validation._scored import counts_from_dict, judge_scored, merge_scored

    rules = Policy.from_yaml(policy)
    parts = [counts_from_dict(json.loads(Path(c.path).read_text())) for c in counts]
    merged = merge_scored([p for p, _ in parts])
    result = judge_scored(merged, parts[0][1], rules.validation, seed=seed)
    write_report(result, Subject(policy_sha256=rules.sha256), report.path, html_path=report_html.path)
    logged = loggable_metrics(result.overall)
    for attr, values in result.disparities().items():
        logged.update(loggable_metrics(values, prefix=f"{attr}."))
    for name, value in logged.items():
        metrics.log_metric(name, value)
    return namedtuple("GateOutputs", ["status", "passed", "reason"])(*gate_outputs(result.verdict))
