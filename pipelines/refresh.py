"""refresh_pipeline: the model in production against what it sees now, and, when the policy says
so, a challenger judged against it. Wiring only: no logic lives here.

It is the lifecycle's fifth stage too (a sub-pipeline there, run only after a registration), and
the recurring run of `kfp-rai schedule --pipeline refresh`.
"""

from kfp import dsl

from kfp_rai.components import combine_datasets, monitor_model, resolve_champion
from kfp_rai.pipelines.stages import (
    KFP_STORE_REGISTRY,
    audit_key,
    build_and_judge,
    hmac_key,
    load,
    resources,
    verifies,
)


@dsl.pipeline(name="kfp-rai-refresh")
def refresh_pipeline(
    model_name: str = "adult-income",
    current_data: str = "bundled:adult-test",
    registry_uri: str = KFP_STORE_REGISTRY,
    alias: str = "production",
    version: str = "",
    policy: str = "",
    collection_plan: str = "",
    reference_population: str = "",
    seed: int = 0,
    launched_by: str = "",
    notify_url: str = "",
    fail_when_blocked: bool = False,
    labels: str = "",
    audit_log: str = "",
):
    """Responsible-AI refresh: the model the registry's alias names (production) against the current data
    — drift of its inputs and of its predictions and, where the data carries labels, its performance and
    per-group fairness — then, when the policy's refresh section says so, a challenger trained and judged
    like the lifecycle's model, compared with the champion on the same held-out rows, registered under the
    challenger alias for a person to decide on; never promoted, never deployed.

    Args:
        model_name: The registered model to refresh.
        current_data: What the model sees now: a labelled or unlabelled .csv/.parquet file, a directory of
            parquet partitions, or bundled:adult-test.
        registry_uri: The registry (a directory or s3://bucket/prefix?endpoint_override=...; default: KFP's own
            object store).
        alias: The alias naming the champion (production).
        version: A version number instead of the alias (the lifecycle checks the candidate it just registered).
        policy: Policy text or URI; empty: the policy the champion was judged under.
        collection_plan: Collection plan text or URI for a challenger; empty: the champion's.
        reference_population: Reference population text or URI for a challenger; empty: the champion's.
        seed: Random seed of the bootstraps and of a challenger's split and training.
        launched_by: Who launched this run (recorded on a challenger's registration).
        notify_url: A webhook told when a challenger awaits a decision; empty: the policy's refresh.notify_url.
        fail_when_blocked: True makes a challenger the gates block fail the run.
        labels: Late labels of served requests (id, label, optionally the sensitive attributes), with serving's
            traffic summaries as current_data: the served model's performance and fairness on them.
        audit_log: The serving audit log holding the scores those labels are joined with.
    """
    champion = resolve_champion(
        registry_uri=registry_uri,
        model_name=model_name,
        alias=alias,
        version=version,
        policy=policy,
        collection_plan=collection_plan,
        reference_population=reference_population,
        scheduled_time=dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
        created_time=dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER,
    )
    verifies(resources(champion)).set_caching_options(False)  # the alias moves: never answer from the cache
    settings = champion.outputs
    with dsl.If(settings["found"] == True, name="champion-found"):  # noqa: E712 - kfp needs ==
        monitored = monitor_model(
            champion=settings["champion"],
            current_data=current_data,
            policy=settings["policy"],
            sensitive_features=settings["sensitive_features"],
            registry_uri=registry_uri,
            seed=seed,
            window_time=settings["window_time"],
            labels=labels,
            audit_log=audit_log,
        )
        # serving's traffic summaries and late labels are read with its audit and pseudonymization keys
        audit_key(hmac_key(verifies(resources(monitored)))).set_caching_options(False)
        with dsl.If(monitored.outputs["retrain"] == True, name="challenger-trained"):  # noqa: E712
            schema = dict(
                target=settings["target"],
                positive_label=settings["positive_label"],
                sensitive_features=settings["sensitive_features"],
                pseudonymize=settings["pseudonymize"],
                policy=settings["policy"],
            )
            current = load(source=current_data, model_name=model_name, **schema).after(monitored)
            rows = combine_datasets(
                current=current.outputs["dataset"],
                training_data=monitored.outputs["training_data"],
                reference_source=settings["training_data"],
                **schema,
            )
            hmac_key(resources(rows))
            build_and_judge(
                rows.outputs["dataset"],
                target=settings["target"],
                positive_label=settings["positive_label"],
                sensitive_features=settings["sensitive_features"],
                reference_population=settings["reference_population"],
                collection_plan=settings["collection_plan"],
                policy=settings["policy"],
                reviewer="",
                model_name=model_name,
                intended_use=settings["intended_use"],
                registry_uri=registry_uri,
                test_size=settings["test_size"],
                seed=seed,
                launched_by=launched_by,
                fail_when_blocked=fail_when_blocked,
                training_data=settings["training_data"],
                pseudonymize=settings["pseudonymize"],
                challenger_of=champion,
                refresh_report=monitored.outputs["report"],
                notify_url=notify_url,
                why=monitored.outputs["reason"],
            )
