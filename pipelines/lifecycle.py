"""lifecycle_pipeline: the five stages, wired with gates. Wiring only: no logic lives here."""

from kfp import dsl, kubernetes

from kfp_rai._image import IMAGE
from kfp_rai.components import (
    check_registry,
    check_representativeness,
    deploy_model,
    detect_drift,
    explain_model,
    load_dataset,
    register_model,
    split_dataset,
    stop_blocked_model,
    train_model,
    validate_model,
    write_datasheet,
    write_model_card,
)

# Requests/limits per task on a cluster (kfp.local ignores them). Sized on Adult (~50k rows):
# training and SHAP are the heavy steps.
_SMALL = ("250m", "1", "512Mi", "2Gi")
_LARGE = ("1", "2", "2Gi", "6Gi")
PSEUDONYMIZATION_SECRET = "kfp-rai-pseudonymization"  # nosec B105  # a Secret's name, not a secret
# Model signing (see kfp_rai.core.signing): the private key reaches only the tasks that sign
# (training, registration); every other task that reads a model gets the public key alone.
SIGNING_SECRET = "kfp-rai-signing"  # nosec B105  # a Secret's name, not a secret
# The registry (and human-written files given as URIs) live in KFP's own object store by default;
# its credentials are KFP's Secret (kind and standalone KFP: mlpipeline-minio-artifact; its service
# minio-service answers S3, whether MinIO or SeaweedFS stands behind it).
STORE_SECRET = "mlpipeline-minio-artifact"  # nosec B105  # a Secret's name, not a secret
KFP_STORE_REGISTRY = "s3://mlpipeline/kfp-rai/registry?endpoint_override=minio-service.kubeflow:9000&scheme=http"


def _reads_store(task):
    """Credentials of the object store for a task that reads the registry or a file given by URI
    (optional: a registry on a volume needs none)."""
    kubernetes.use_secret_as_env(
        task,
        secret_name=STORE_SECRET,
        secret_key_to_env={"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"},
        optional=True,
    )
    return task


def _signs(task):
    kubernetes.use_secret_as_env(
        task,
        secret_name=SIGNING_SECRET,
        secret_key_to_env={"signing-key.pem": "KFP_RAI_SIGNING_KEY", "verify-key.pem": "KFP_RAI_VERIFY_KEY"},
        optional=True,  # without it the task fails closed with the command to create it
    )
    return task


def _verifies(task):
    kubernetes.use_secret_as_env(
        task, secret_name=SIGNING_SECRET, secret_key_to_env={"verify-key.pem": "KFP_RAI_VERIFY_KEY"}, optional=True
    )
    return task


def _resources(task, size=_SMALL):
    cpu_request, cpu_limit, memory_request, memory_limit = size
    _reads_store(task)  # every task reads the human-written files, which may be URIs in the store
    return (
        task.set_cpu_request(cpu_request)
        .set_cpu_limit(cpu_limit)
        .set_memory_request(memory_request)
        .set_memory_limit(memory_limit)
    )


def _load(**kwargs):
    """load_dataset with retries (storage hiccups), no cache (the same path may hold new data) and
    the pseudonymization key from its Secret (optional: only needed when columns are pseudonymized;
    the task fails closed if they are and the key is missing)."""
    task = _resources(load_dataset(**kwargs)).set_retry(num_retries=2, backoff_duration="30s")
    kubernetes.use_secret_as_env(
        task, secret_name=PSEUDONYMIZATION_SECRET, secret_key_to_env={"hmac-key": "KFP_RAI_HMAC_KEY"}, optional=True
    )
    return task.set_caching_options(False)


def _build_and_judge(
    data,
    target: str,
    positive_label: str,
    sensitive_features: list[str],
    reference_population: str,
    collection_plan: str,
    policy: str,
    reviewer: str,
    model_name: str,
    intended_use: str,
    registry_uri: str,
    test_size: float,
    seed: int,
    launched_by: str,
    fail_when_blocked: bool,
    after=None,
    deploy=None,
    serving_namespace=None,
):
    """Discovery → training → validation → production on ``data``; returns the split, training,
    card and registration tasks. A blocked model takes its own branch (stop-blocked-model).

    ``.after`` keeps the stages in order where the data flow alone would not (the datasheet, discovery's
    decision, before training), so a run reads, locally and in the Kubeflow graph, stage by stage.
    """
    split = _resources(split_dataset(dataset=data, target=target, test_size=test_size, seed=seed))
    if after is not None:
        split.after(after)
    representativeness = _resources(
        check_representativeness(
            dataset=data,
            sensitive_features=sensitive_features,
            reference_population=reference_population,
            policy=policy,
        ).after(split)
    )
    datasheet = _resources(
        write_datasheet(
            dataset=data,
            target=target,
            positive_label=positive_label,
            sensitive_features=sensitive_features,
            collection_plan=collection_plan,
            policy=policy,
            representativeness_report=representativeness.outputs["report"],
        )
    )
    sheet = datasheet.outputs["datasheet"]
    trained = train_model(
        train=split.outputs["train"],
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        policy=policy,
        seed=seed,
        model_name=model_name,
        datasheet=sheet,
    )
    _signs(_resources(trained, _LARGE))
    explained = explain_model(
        model=trained.outputs["model"],
        data=split.outputs["test"],
        sensitive_features=sensitive_features,
        policy=policy,
        seed=seed,
        datasheet=sheet,
    )
    _verifies(_resources(explained, _LARGE))
    validated = validate_model(
        model=trained.outputs["model"],
        test=split.outputs["test"],
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        policy=policy,
        seed=seed,
        explanation=explained.outputs["report"],
        reviewer=reviewer,
    )
    _verifies(_resources(validated))
    card = write_model_card(
        model=trained.outputs["model"],
        representativeness_report=representativeness.outputs["report"],
        validation_report=validated.outputs["report"],
        explanation_report=explained.outputs["report"],
        intended_use=intended_use,
        datasheet=sheet,
    )
    _verifies(_resources(card))
    with dsl.If(card.outputs["passed"] == True, name="every-gate-passed"):  # noqa: E712 - kfp needs ==
        registered = register_model(
            model=trained.outputs["model"],
            model_card=card.outputs["card"],
            model_card_json=card.outputs["card_json"],
            registry_uri=registry_uri,
            policy=policy,
            collection_plan=collection_plan,
            reference_population=reference_population,
            launched_by=launched_by,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        )
        # Registration writes a new version each time: never answer it from the cache.
        _signs(_resources(registered)).set_caching_options(False)
        if deploy is not None:  # the first pass only: a retrain is a candidate, never deployed by a run
            # Deployment is a human decision taken when launching the run (deploy=true), and it serves
            # only what the production alias names, which only a person moves.
            with dsl.If(deploy == True, name="deployment-requested"):  # noqa: E712
                deployed = deploy_model(
                    registry_uri=registry_uri,
                    model_name=model_name,
                    namespace=serving_namespace,
                    launched_by=launched_by,
                ).after(registered)
                _verifies(_resources(deployed)).set_caching_options(False).set_env_variable("KFP_RAI_IMAGE", IMAGE)
    with dsl.Else(name="model-blocked"):
        blocked = stop_blocked_model(
            status=card.outputs["status"], reason=card.outputs["reason"], fail_run=fail_when_blocked
        )
        _resources(blocked).set_display_name("model blocked: nothing registered")
    return split, trained, card, registered


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
    registration, optional deployment) → refresh (drift of current data; on drift, retrain, re-judge
    and re-register).

    Args:
        data: Training data: a .csv/.parquet path the pods can read, or bundled:adult (UCI Adult inside the
            image).
        current_data: The data the model sees now, checked for drift and retrained on when drifted;
            bundled:adult-test is Adult's test file.
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
    loaded = _load(source=data, model_name=model_name, intended_use=intended_use, policy=policy, **schema)
    # The registry is checked before anything is trained: empty, unreachable, read-only or tampered stops here.
    registry = _resources(check_registry(registry_uri=registry_uri, model_name=loaded.outputs["model_name"]))
    registry.set_caching_options(False)
    common = dict(
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        reference_population=reference_population,
        collection_plan=collection_plan,
        policy=policy,
        model_name=loaded.outputs["model_name"],
        intended_use=loaded.outputs["intended_use"],
        registry_uri=registry_uri,
        test_size=test_size,
        seed=seed,
        launched_by=launched_by,
        fail_when_blocked=fail_when_blocked,
    )
    split, trained, card, _ = _build_and_judge(
        loaded.outputs["dataset"],
        reviewer=reviewer,
        after=registry,
        deploy=deploy,
        serving_namespace=serving_namespace,
        **common,
    )
    current = _load(source=current_data, policy=policy, **schema).after(card)
    drift = detect_drift(
        current=current.outputs["dataset"],
        policy=policy,
        model=trained.outputs["model"],
    )
    # Drift is a judgement about *now*: always recompute it.
    _verifies(_resources(drift)).set_caching_options(False)
    with dsl.If(drift.outputs["drift_detected"] == True, name="drift-detected"):  # noqa: E712
        _build_and_judge(current.outputs["dataset"], reviewer="", **common)
