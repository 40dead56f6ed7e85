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
    batches = open_batches(path, format="parquet")
    part = summarize_current(batches, reference)
    never = {*reference.columns, *reference.left_out}
    unreferenced = [c for c in batches.schema.names if c not in never]  # not judged by merge_drift
    atomic_write_text(summary.path, json.dumps({**part.to_dict(), "unreferenced": unreferenced}))
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
    parts = [json.loads(Path(s.path).read_text()) for s in summaries]
    current = merge_all([DataSummary.from_dict(p) for p in parts])
    unreferenced = sorted({c for p in parts for c in p.get("unreferenced", [])})
    result = drift_between(reference, current, policy=rules.drift, unreferenced=unreferenced)
    subject = model_subject(meta, rules.sha256, reference=meta.get("training_data_sha256", ""))
    write_report(result, subject, report.path, report_html.path)
    for name, value in loggable_metrics({f"drift.{c.column}": c.statistic for c in result.columns}).items():
        metrics.log_metric(name, value)
    outputs = namedtuple("DriftOutputs", ["status", "passed", "reason", "drift_detected"])
    return outputs(*gate_outputs(result.verdict), result.drift_detected)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def resolve_champion(
    registry_uri: str,
    model_name: str,
    champion: Output[Model],
    alias: str = "production",
    version: str = "",
    policy: str = "",
    collection_plan: str = "",
    reference_population: str = "",
    scheduled_time: str = "",
    created_time: str = "",
) -> NamedTuple(
    "ChampionOutputs",
    found=bool,
    version=str,
    reason=str,
    policy=str,
    collection_plan=str,
    reference_population=str,
    training_data=str,
    target=str,
    positive_label=str,
    sensitive_features=list,
    test_size=float,
    seed=int,
    pseudonymize=list,
    intended_use=str,
    window_time=str,
):
    """Refresh: find the model a refresh judges, the version the registry's alias names (production by
    default), verify it (its history, signature, model file and place) and copy it into this task's output.

    Nothing is compared with a model that is not in production: with no production version, found is false
    and the refresh stops with the reason. The human-written files default to those the champion was judged
    under (stored with it); the settings of the run that trained it come with it, so a challenger is trained
    the same way.

    Args:
        registry_uri: The registry (a directory or s3://bucket/prefix?endpoint_override=...).
        model_name: The registered model's name.
        alias: Which alias names the champion (production, or challenger).
        version: A version number instead of an alias (the lifecycle checks the candidate it just registered).
        policy: Policy text or URI; empty: the policy the champion was judged under.
        collection_plan: Collection plan text or URI; empty: the champion's.
        reference_population: Reference population text or URI; empty: the champion's.
        scheduled_time: KFP's schedule time of a recurring run.
        created_time: The run's creation time (used when there is no schedule time).

    Returns:
        found: True when the alias (or version) names a verified version.
        version: Its version number.
        reason: One line: what was resolved, or why nothing was.
        policy: The policy text the refresh judges under.
        collection_plan: The collection plan text for a challenger.
        reference_population: The reference population text for a challenger.
        training_data: Where the champion's training data is (for a challenger trained on reference+current).
        target: The label column.
        positive_label: The favourable label.
        sensitive_features: The sensitive attributes the champion was judged on.
        test_size: The held-out share the champion was judged with.
        seed: The champion's seed.
        pseudonymize: Identifier columns pseudonymized at load.
        intended_use: The champion's intended use.
        window_time: The refresh's point in time (the schedule time, else the creation time).
        champion: The verified version, copied (every file and its signature).
    """
    from collections import namedtuple

    from kfp_rai.core.model_dir import copy_version
    from kfp_rai.production import open_registry
    from kfp_rai.refresh import NoChampion, resolve_champion
    from kfp_rai.refresh import scheduled_time as when

    names = ["found", "version", "reason", "policy", "collection_plan", "reference_population", "training_data",
             "target", "positive_label", "sensitive_features", "test_size", "seed", "pseudonymize", "intended_use",
             "window_time"]  # fmt: skip
    outputs = namedtuple("ChampionOutputs", names)
    window = when(scheduled_time, created_time)
    try:
        found = resolve_champion(open_registry(registry_uri), model_name, alias=alias, version=version)
    except NoChampion as exc:
        return outputs(False, "", str(exc), policy, collection_plan, reference_population, "", "", "", [], 0.3, 0,
                       [], "", window)  # fmt: skip
    copy_version(found.uri, champion.path)
    champion.metadata.update(found.to_dict())
    given = {"policy": policy, "collection_plan": collection_plan, "reference_population": reference_population}
    o = found.outputs(given)
    reason = f"{found.role}, sha256 {found.meta['sha256']}, verified"
    return outputs(True, found.version, reason, o["policy"], o["collection_plan"], o["reference_population"],
                   o["training_data"], o["target"], o["positive_label"], o["sensitive_features"], o["test_size"],
                   o["seed"], o["pseudonymize"], o["intended_use"], window)  # fmt: skip


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def monitor_model(
    champion: Input[Model],
    current_data: str,
    report: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    policy: str = "",
    sensitive_features: list = [],  # noqa: B006 - kfp takes literal defaults
    registry_uri: str = "",
    seed: int = 0,
    window_time: str = "",
    labels: str = "",
    audit_log: str = "",
) -> NamedTuple(
    "MonitorOutputs", status=str, passed=bool, reason=str, drift_detected=bool, retrain=bool, training_data=str
):
    """Refresh stage: what the champion sees now against what it was judged on, and the decision.

    One streamed pass over the current data: its inputs over the champion's stored reference bins (input
    drift), the champion's scores against those at validation (prediction drift), and where the rows carry
    the label, the champion's performance and per-group fairness with intervals under the validation
    policy. The policy's refresh section decides whether a challenger is trained (retrain_on, min_rows,
    cooldown read from the registry's events); no labels, no challenger.

    Args:
        champion: The verified champion (from resolve_champion).
        current_data: The current data: a .csv/.parquet file, a directory of parquet partitions (local or
            s3://...), bundled:..., or a directory of serving's traffic summaries (keyed with the audit key).
        policy: Policy text or URI (resolve_champion's: the champion's own unless one was given).
        sensitive_features: The sensitive attributes the champion was judged on.
        registry_uri: The registry, for the cooldown (a challenger awaiting a decision).
        seed: Random seed of the bootstrap.
        window_time: The refresh's point in time (from resolve_champion).
        labels: Late labels of served requests (a file with id, label and optionally the sensitive attributes),
            with traffic summaries as the current data: joined by the pseudonymized request id with the scores
            the audit log holds.
        audit_log: The serving audit log those scores are in (verified first).

    Returns:
        status: The refresh verdict: passed (nothing triggered), warning (a trigger fired), failed (the champion
            fails an enforced limit on the new rows), not_judged (too little data).
        passed: True unless failed or not judged.
        reason: One line naming every trigger and the decision.
        drift_detected: True when the inputs or the predictions drifted.
        retrain: True when a challenger is trained.
        training_data: What it trains on: current or reference+current.
        report: The refresh report as JSON.
        report_html: The refresh report as a self-contained HTML page with charts.
        metrics: Rows, labelled rows, drifted columns, positive rate, the champion's metrics on the new rows.
    """
    from collections import namedtuple

    from kfp_rai.core.evidence import gate_outputs, loggable_metrics, model_subject, write_report
    from kfp_rai.policy import Policy
    from kfp_rai.refresh import Champion, monitor_champion, report_metrics

    rules = Policy.from_yaml(policy)
    found = Champion.from_dir(champion.path, dict(champion.metadata))
    result = monitor_champion(
        found, current_data, rules, sensitive=sensitive_features, registry_uri=registry_uri, seed=seed,
        window_time=window_time, labels=labels, audit_log=audit_log,
    )  # fmt: skip
    write_report(result, model_subject(found.meta, rules.sha256, found.version), report.path, report_html.path)
    for name, value in loggable_metrics(report_metrics(result)).items():
        metrics.log_metric(name, value)
    outputs = namedtuple("MonitorOutputs", ["status", "passed", "reason", "drift_detected", "retrain", "training_data"])
    return outputs(
        *gate_outputs(result.verdict), result.drift_detected, result.decision.retrain, result.decision.training_data
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def combine_datasets(
    current: Input[Dataset],
    training_data: str,
    reference_source: str,
    target: str,
    positive_label: str,
    sensitive_features: list,
    dataset: Output[Dataset],
    pseudonymize: list = [],  # noqa: B006 - kfp takes literal defaults
    policy: str = "",
):
    """Refresh: the rows a challenger trains on: the current rows, or (training_data reference+current)
    the champion's training data and them, loaded and screened like any data (load_dataset's checks, the
    policy's privacy decisions, the same pseudonyms), over the columns both hold.

    Args:
        current: The labelled current data (from load_dataset).
        training_data: current, or reference+current (the refresh decision's).
        reference_source: Where the champion's training data is (recorded with it at registration).
        target: The label column.
        positive_label: The favourable label.
        sensitive_features: The sensitive attributes.
        pseudonymize: Identifier columns pseudonymized at load (as for the champion).
        policy: Policy text or URI (its privacy section).

    Returns:
        dataset: The rows, as zstd parquet; metadata says which data sets they come from and how many of each.
    """
    from kfp_rai.core.tables import read_table, write_table
    from kfp_rai.discovery import load_labelled
    from kfp_rai.policy import Policy
    from kfp_rai.refresh import training_window

    frames = [read_table(current.path, format="parquet")]
    metas = [dict(current.metadata)]
    if training_data == "reference+current":
        reference, _, plan = load_labelled(
            reference_source, target=target, positive_label=positive_label, sensitive_features=sensitive_features,
            pseudonymize=pseudonymize, privacy=Policy.from_yaml(policy).privacy.decisions,
        )  # fmt: skip
        frames.append(reference)
        metas.append({"source": reference_source, "identifier_columns": list(plan.pseudonymize)})
    combined, meta = training_window(frames, metas)
    dataset.metadata.update(write_table(combined, dataset.path))
    dataset.metadata.update(meta)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def compare_models(
    champion: Input[Model],
    challenger: Input[Model],
    test: Input[Dataset],
    sensitive_features: list,
    report: Output[Artifact],
    report_html: Output[HTML],
    policy: str = "",
    seed: int = 0,
) -> NamedTuple("CompareOutputs", status=str, passed=bool, reason=str):
    """Refresh: the challenger against the champion on the same held-out rows of the new data: every
    performance metric and every fairness disparity (each attribute and intersection) of both, the difference
    with a paired bootstrap interval, judged by the policy's non-regression limits (refresh.max_*).

    Args:
        champion: The verified champion (from resolve_champion).
        challenger: The challenger (from train_model).
        test: The held-out rows of the new data (from split_dataset): the same rows for both models.
        sensitive_features: The sensitive attributes.
        policy: Policy text or URI.
        seed: Random seed of the paired bootstrap.

    Returns:
        status: passed (no regression beyond the limits), failed, warning (regressions the policy records only)
            or not_judged.
        passed: True when the challenger may be registered as far as non-regression goes.
        reason: One line naming every regression.
        report: The comparison as JSON.
        report_html: The comparison as a self-contained HTML page with a chart.
    """
    from collections import namedtuple

    from kfp_rai.core.evidence import gate_outputs, model_subject, write_report
    from kfp_rai.core.tables import read_table
    from kfp_rai.policy import Policy
    from kfp_rai.refresh import Champion, compare_with_champion

    rules = Policy.from_yaml(policy)
    found = Champion.from_dir(champion.path, dict(champion.metadata))
    result, meta = compare_with_champion(
        found, challenger.path, read_table(test.path, format="parquet"), sensitive=sensitive_features,
        policy=rules, seed=seed, challenger_sha256=challenger.metadata.get("sha256"),
    )  # fmt: skip
    write_report(result, model_subject(meta, rules.sha256, test=test.metadata.get("sha256", "")), report.path,
                 report_html.path)  # fmt: skip
    return namedtuple("CompareOutputs", ["status", "passed", "reason"])(*gate_outputs(result.verdict))


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def notify_challenger(
    registered: Input[Model], next_step: str, why: str, notify_url: str = "", policy: str = ""
) -> NamedTuple("NotifyOutputs", status=str, reason=str):
    """Refresh: tell people a challenger awaits their decision: a short JSON (model, version, alias, why,
    what to do next) POSTed to a webhook (the notify_url parameter, else the policy's refresh.notify_url).
    No URL: nothing is sent and the reason says so. A webhook that fails or is slow (5 s) does not fail the
    run: the status is a warning with the reason.

    Args:
        registered: The registered challenger (from register_model).
        next_step: What a person does next (from register_model).
        why: Why the challenger exists (the refresh decision's reason).
        notify_url: The webhook (http or https); empty: the policy's refresh.notify_url.
        policy: Policy text or URI.

    Returns:
        status: passed when delivered, not_judged when no webhook is set, warning when delivery failed.
        reason: One line: where it was sent, or why not.
    """
    from collections import namedtuple

    from kfp_rai.policy import Policy
    from kfp_rai.refresh import notify

    meta = dict(registered.metadata)
    url = notify_url or Policy.from_yaml(policy).refresh.notify_url
    status, reason = notify(url, meta, next_step=next_step, why=why)
    return namedtuple("NotifyOutputs", ["status", "reason"])(status, reason)
