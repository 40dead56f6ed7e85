"""Discovery components: load, split, check representativeness."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Output

from kfp_rai._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def load_dataset(
    source: str,
    target: str,
    positive_label: str,
    sensitive_features: list[str],
    dataset: Output[Dataset],
    pseudonymize: list[str] = [],  # noqa: B006 - kfp takes literal defaults
    model_name: str = "",
    intended_use: str = "",
    policy: str = "",
) -> NamedTuple("LoadOutputs", rows=int, positive_rate=float, model_name=str, intended_use=str):
    """Load a CSV or parquet file (or bundled data) and check it is a usable labelled data set.

    Fails with one clear message if a column is missing or repeated, the target does not have
    exactly two classes including the positive label, a sensitive feature has fewer than two
    groups, a number is infinite, or the data is empty. Personal data (e-mail, phone, national
    ids, payment cards, IPs, IBANs, dates of birth, names) is detected before anything is written:
    each such column is pseudonymized, dropped or kept as the policy's privacy.columns decides,
    and refused when nobody decided. Pseudonyms are HMAC-SHA256 with the key KFP_RAI_HMAC_KEY
    (the Secret kfp-rai-pseudonymization in a cluster); without it the task fails rather than
    write raw identifiers.

    Args:
        source: A .csv, .csv.gz or .parquet path the task can read, or bundled:adult / bundled:adult-test for
            the UCI Adult data inside the image.
        target: The label column.
        positive_label: The favourable value of the label (the one a model predicts as positive).
        sensitive_features: Columns holding the attributes fairness is judged on, e.g. ["sex", "race"].
        pseudonymize: Identifier columns to replace by keyed pseudonyms at load; never model inputs nor drift
            columns.
        model_name: The model's name; empty derives it from the source (the bundled set's own, else the file
            name).
        intended_use: What the model is for, as the model card states it; empty uses the bundled set's own, else
            "not stated".
        policy: YAML text of a kfp-rai policy (its privacy section decides about personal data); empty uses the
            defaults.

    Returns:
        rows: Rows loaded.
        positive_rate: Share of rows with the positive label.
        model_name: The model name to use: the given one or the one the source implies.
        intended_use: The intended use to state: the given one, the bundled set's, or "not stated".
        dataset: The data as zstd parquet; metadata holds rows, columns, sha256, schema, source,
            identifier_columns and personal_data (column names, kinds, counts and decisions; never a value).
    """
    from collections import namedtuple

    from kfp_rai.core.bundled import default_intended_use, default_model_name
    from kfp_rai.core.tables import write_table
    from kfp_rai.discovery import load_labelled
    from kfp_rai.policy import Policy

    df, summary, plan = load_labelled(
        source,
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        pseudonymize=pseudonymize,
        privacy=Policy.from_yaml(policy).privacy.decisions,
    )
    dataset.metadata.update(write_table(df, dataset.path))
    dataset.metadata.update(
        {
            "source": source,
            "positive_rate": summary.positive_rate,
            "identifier_columns": list(plan.pseudonymize),
            "personal_data": plan.to_dict(),
        }
    )
    outputs = namedtuple("LoadOutputs", ["rows", "positive_rate", "model_name", "intended_use"])
    return outputs(
        summary.rows,
        summary.positive_rate,
        model_name or default_model_name(source),
        intended_use or default_intended_use(source),
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def split_dataset(
    dataset: Input[Dataset],
    target: str,
    test_size: float,
    seed: int,
    train: Output[Dataset],
    test: Output[Dataset],
):
    """Split a data set into train and test, stratified on the target, reproducible by the seed.

    Args:
        dataset: The data set to split (from load_dataset).
        target: The label column to stratify on.
        test_size: Share of rows held out for testing, in (0, 1).
        seed: Random seed of the split.

    Returns:
        train: The training part; metadata as the input's plus parent_sha256 and seed.
        test: The held-out part; metadata as the input's plus parent_sha256 and seed.
    """
    from kfp_rai.core.tables import read_table, write_table
    from kfp_rai.discovery import split_dataset as split

    df = read_table(dataset.path, format="parquet")
    train_df, test_df = split(df, target=target, test_size=test_size, seed=seed)
    for artifact, part in ((train, train_df), (test, test_df)):
        artifact.metadata.update(write_table(part, artifact.path))
        artifact.metadata.update(
            {
                "parent_sha256": dataset.metadata.get("sha256", ""),
                "seed": seed,
                "source": dataset.metadata.get("source", ""),
                "identifier_columns": dataset.metadata.get("identifier_columns", []),
            }
        )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def check_representativeness(
    dataset: Input[Dataset],
    sensitive_features: list[str],
    reference_population: str,
    policy: str,
    report: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    fail_on_violation: bool = False,
) -> NamedTuple("GateOutputs", status=str, passed=bool, reason=str):
    """Discovery gate: compare each group's share of the data, and each intersection's, with a cited
    reference population.

    Each group gets a simultaneous (Goodman) interval, its ratio to the expected share and a verdict:
    within tolerance, under-represented or over-represented (its whole interval below min_ratio or
    above max_ratio), inconclusive (an interval reaching across a limit: more data needed; it fails
    the gate as a violation would, never called one), absent, too small to judge (fewer than
    min_group_size rows, or an interval across both limits) or not in the reference; the last two
    are not judged, which fails closed. judge_on decides whether a group within tolerance needs
    only its ratio (point) or its whole interval (interval) inside the limits. Each attribute also
    gets a chi-square goodness-of-fit test.

    Args:
        dataset: The data set to judge (from load_dataset).
        sensitive_features: Columns holding the attributes to judge, e.g. ["sex", "race"].
        reference_population: YAML text of a reference population file (source, year, shares, mapping); empty
            uses the bundled US Census 2000 shares for sex and race.
        policy: YAML text of a kfp-rai policy; empty uses the defaults.
        fail_on_violation: Raise GateFailedError (fail the task) instead of returning passed=false.

    Returns:
        status: The verdict: passed, warning (a violation the policy records only), failed or not_judged.
        passed: True when the model may go on (passed or warning).
        reason: One line naming every finding that did not pass, in full.
        report: The report as JSON (verdict, findings, shares, simultaneous intervals, goodness of fit, subject).
        report_html: The report as a self-contained HTML page with charts.
        metrics: share_ratio.<attribute>.<group> for each group and intersection.
    """
    from collections import namedtuple

    from kfp_rai.core.evidence import gate_outputs, lineage, loggable_metrics, write_report
    from kfp_rai.core.report import Subject
    from kfp_rai.core.tables import read_table
    from kfp_rai.discovery import ReferencePopulation
    from kfp_rai.discovery import check_representativeness as check
    from kfp_rai.errors import GateFailedError
    from kfp_rai.policy import Policy

    rules = Policy.from_yaml(policy)
    ref = (
        ReferencePopulation.from_yaml(reference_population)
        if reference_population.strip()
        else ReferencePopulation.default()
    )
    df = read_table(dataset.path, format="parquet")
    result = check(df, ref, sensitive_features=sensitive_features, policy=rules.representativeness)
    data_sha = dataset.metadata.get("sha256", "")
    subject = Subject(data_sha256={"input": data_sha}, policy_sha256=rules.sha256)
    write_report(result, subject, report.path, html_path=report_html.path)
    report.metadata.update(lineage(rules.sha256, data_sha256=data_sha))
    ratios = {f"share_ratio.{g.attribute}.{g.group}": g.ratio for g in result.groups}
    for name, value in loggable_metrics(ratios).items():
        metrics.log_metric(name, value)
    if fail_on_violation and not result.passed:
        raise GateFailedError(f"representativeness: {result.reason}")
    return namedtuple("GateOutputs", ["status", "passed", "reason"])(*gate_outputs(result.verdict))


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def write_datasheet(
    dataset: Input[Dataset],
    target: str,
    positive_label: str,
    sensitive_features: list[str],
    collection_plan: str,
    policy: str,
    representativeness_report: Input[Artifact],
    datasheet: Output[Artifact],
    datasheet_md: Output[Markdown],
    datasheet_html: Output[HTML],
    fail_on_violation: bool = False,
) -> NamedTuple("GateOutputs", status=str, passed=bool, reason=str):
    """Discovery's decision: the datasheet (Gebru et al.) of the data, checked against its
    human-written data collection plan.

    Checks the data against the plan (expected columns and groups present, no unexpected group, the
    sensitive attributes the plan names, rows inside the collection period when it names a date
    column); measures rows, label base rate and missingness per group and intersection, and the
    association of every feature with every sensitive attribute (Cramér's V, correlation ratio),
    marking proxies at the policy's proxies.threshold. Its verdict combines representativeness and
    the plan: this is the discovery stage's verdict. No plan is not judged (fails closed).

    Args:
        dataset: The data set (from load_dataset).
        target: The label column.
        positive_label: The favourable value of the label.
        sensitive_features: Columns holding the sensitive attributes.
        collection_plan: YAML text of the data collection plan (schema: kfp_rai/schemas/collection_plan.schema.json);
            empty uses the bundled data's own plan, and for other data means "no plan" (not judged).
        policy: YAML text of a kfp-rai policy; empty uses the defaults.
        representativeness_report: The representativeness report (from check_representativeness).
        fail_on_violation: Raise GateFailedError (fail the task) instead of returning passed=false.

    Returns:
        status: The discovery verdict: passed, warning, failed or not_judged.
        passed: True when the data may be trained on (passed or warning).
        reason: One line naming every finding that did not pass, in full.
        datasheet: The datasheet as JSON (plan, quality per group, associations and proxies, findings).
        datasheet_md: The datasheet as Markdown.
        datasheet_html: The datasheet as a self-contained HTML page with charts.
    """
    import json
    from collections import namedtuple

    from kfp_rai.core.bundled import default_collection_plan
    from kfp_rai.core.evidence import gate_outputs, lineage, write_report
    from kfp_rai.core.report import Subject
    from kfp_rai.core.tables import read_table
    from kfp_rai.discovery import CollectionPlan
    from kfp_rai.discovery import write_datasheet as write
    from kfp_rai.errors import GateFailedError
    from kfp_rai.policy import Policy

    rules = Policy.from_yaml(policy)
    plan_text = (
        collection_plan if collection_plan.strip() else default_collection_plan(dataset.metadata.get("source", ""))
    )
    df = read_table(dataset.path, format="parquet")
    with open(representativeness_report.path, encoding="utf-8") as f:
        representativeness = json.load(f)
    identifiers = set(dataset.metadata.get("identifier_columns", []))
    result = write(
        df,
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        features=[c for c in df.columns if c != target and c not in sensitive_features and c not in identifiers],
        plan=CollectionPlan.from_yaml(plan_text) if plan_text else None,
        representativeness=representativeness,
        proxy_threshold=rules.proxies.threshold,
        confidence_level=rules.representativeness.confidence_level,
        intersections=rules.representativeness.intersections,
        personal_data=dataset.metadata.get("personal_data", []),
        enforce_plan=rules.representativeness.enforce,
    )
    data_sha = dataset.metadata.get("sha256", "")
    subject = Subject(data_sha256={"input": data_sha}, policy_sha256=rules.sha256)
    write_report(result, subject, datasheet.path, html_path=datasheet_html.path, md_path=datasheet_md.path)
    datasheet.metadata.update(lineage(rules.sha256, data_sha256=data_sha))
    if fail_on_violation and not result.passed:
        raise GateFailedError(f"discovery: {result.reason}")
    return namedtuple("GateOutputs", ["status", "passed", "reason"])(*gate_outputs(result.verdict))
