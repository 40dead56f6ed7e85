"""lifecycle_pipeline: the five stages, wired with gates (the fifth is the refresh pipeline, run on
what this run registered). Wiring only: no logic lives here."""

from kfp import dsl

from kfp_rai.components import check_registry
from kfp_rai.pipelines.refresh import refresh_pipeline
from kfp_rai.pipelines.stages import KFP_STORE_REGISTRY, build_and_judge, load, resources, verifies


@dsl.pipeline(name="kfp-rai-lifecycle")
def lifecycle_pipeline(
    data: str = "bundled:adult",
    current_data: str = "bundled:adult-test",
    target: str = "income",
    positive_label: str = ">50K",
    sensitive_features: list[str] = ["sex", "race"],  # noqa: B006 - kfp pipeline defaults are literals
    reference_population: str = "",
    collection_plan: str = "",
    policy: str = "",
    reviewer: str = "",
    model_name: str = "",
    intended_use: str = "",
    registry_uri: str = KFP_STORE_REGISTRY,
    test_size: float = 0.3,
    seed: int = 0,
    deploy: bool = False,
    serving_namespace: str = "kfp-rai",
    pseudonymize: list[str] = [],  # noqa: B006
    launched_by: str = "",
    fail_when_blocked: bool = False,
):
    """Responsible-AI lifecycle: discovery (data checks, representativeness, collection plan, datasheet)
    → training → validation (explanations, performance, fairness) → production (model card, gated
    registration as a candidate a person decides on, deployment of what production names) → refresh (the
    refresh pipeline on the registered candidate: drift of the current data and of the predictions, the
    model on the new labelled rows; a challenger when the policy says so, registered, never deployed).

    Args:
        data: Training data: a .csv/.parquet path the pods can read, or bundled:adult (UCI Adult inside the
            image).
        current_data: The data the model sees now, checked by the refresh stage (and a challenger's training data
            when the policy retrains); bundled:adult-test is Adult's test file.
        target: The label column.
        positive_label: The favourable value of the label.
        sensitive_features: Columns holding the attributes representativeness and fairness are judged on (JSON
            list).
        reference_population: YAML text (or its s3:// URI) of the population the data should represent (source,
            year, shares, mapping); empty uses the bundled US Census 2000 shares for sex and race.
        collection_plan: YAML text (or its s3:// URI) of the human-written data collection plan
            (docs/collection-plan.md); empty uses the bundled data's own plan, and for other data means no plan (the
            discovery gate is not judged).
        policy: YAML text of the policy (every threshold; see docs/policy.md), or its URI in the store
            (s3://...); empty uses the defaults.
        reviewer: YAML text (or its s3:// URI) of a reviewer file: the metrics a person computed on the test split,
            compared with ours in validation (docs/reviewer.md); empty: no human check. The retrain is not checked by
            it (other data).
        model_name: Registry name of the model; empty derives it from the data (adult-income for the bundled
            data, else the file name).
        intended_use: What the model is for and not for, stated on the model card; empty uses the bundled data's
            own, else "not stated".
        registry_uri: The model registry every run registers into and people decide in (kfp-rai models): by
            default the KFP object store of a standalone install (minio-service.kubeflow:9000, credentials from the
            Secret mlpipeline-minio-artifact); any s3://bucket/prefix?endpoint_override=host:port&scheme=http or a
            directory the pods share. Checked before anything is trained.
        test_size: Share of the data held out for validation, in (0, 1).
        seed: Random seed of the split, the estimator, the bootstrap and the explanation sample.
        deploy: After a registration, serve the version the production alias names (a person promotes it; never
            "what this run trained") in serving_namespace (needs the kfp-rai-deployer service account); locally the
            step says why it skipped.
        serving_namespace: Namespace of the kfp-rai serving app.
        pseudonymize: Identifier columns replaced by keyed pseudonyms at load (JSON list); the key comes from
            the Secret kfp-rai-pseudonymization.
        launched_by: Who launches this run (your name): recorded on the registration, and with the policy's
            separation of duties that person may not approve the version. kfp-rai submit fills it in.
        fail_when_blocked: True makes a model the gates block fail the run (red in the UI); false (default) lets the
            run succeed with the model blocked on its own branch (stop-blocked-model).
    """
    schema = dict(
        target=target, positive_label=positive_label, sensitive_features=sensitive_features, pseudonymize=pseudonymize
    )
    loaded = load(source=data, model_name=model_name, intended_use=intended_use, policy=policy, **schema)
    # The registry is checked before anything is trained: empty, unreachable, read-only or tampered stops here.
    registry = verifies(resources(check_registry(registry_uri=registry_uri, model_name=loaded.outputs["model_name"])))
    registry.set_caching_options(False)

    def refresh(registered):
        """The fifth stage, on the version this run registered (nothing is in production before a person
        promotes it: the current data is checked against the candidate, skew before approval); a model the
        gates blocked is never refreshed. A challenger it trains is registered, never deployed."""
        refresh_pipeline(
            model_name=loaded.outputs["model_name"],
            current_data=current_data,
            registry_uri=registry_uri,
            alias="",
            version=registered.outputs["version"],
            policy=policy,
            collection_plan=collection_plan,
            reference_population=reference_population,
            seed=seed,
            launched_by=launched_by,
            notify_url="",
            fail_when_blocked=fail_when_blocked,
            labels="",
            audit_log="",
        )

    build_and_judge(
        loaded.outputs["dataset"],
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        reference_population=reference_population,
        collection_plan=collection_plan,
        policy=policy,
        reviewer=reviewer,
        model_name=loaded.outputs["model_name"],
        intended_use=loaded.outputs["intended_use"],
        registry_uri=registry_uri,
        test_size=test_size,
        seed=seed,
        launched_by=launched_by,
        fail_when_blocked=fail_when_blocked,
        training_data=data,
        pseudonymize=pseudonymize,
        after=registry,
        deploy=deploy,
        serving_namespace=serving_namespace,
        then=refresh,
    )
