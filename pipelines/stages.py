"""The wiring both pipelines share: the resources, Secrets and caching of each task, and
discovery → training → validation → production on one data set (the lifecycle's model, and a
refresh's challenger: the same components, never copies). Wiring only: no logic lives here."""

from kfp import dsl, kubernetes

from kfp_rai._image import IMAGE
from kfp_rai.components import (
    check_representativeness,
    compare_models,
    deploy_model,
    explain_model,
    load_dataset,
    notify_challenger,
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
SMALL = ("250m", "1", "512Mi", "2Gi")
LARGE = ("1", "2", "2Gi", "6Gi")
PSEUDONYMIZATION_SECRET = "kfp-rai-pseudonymization"  # nosec B105  # a Secret's name, not a secret
# Model signing (see kfp_rai.core.signing): the private key reaches only the tasks that sign
# (training, registration); every other task that reads a model gets the public key alone.
SIGNING_SECRET = "kfp-rai-signing"  # nosec B105  # a Secret's name, not a secret
# The registry (and human-written files given as URIs) live in KFP's own object store by default;
# its credentials are KFP's Secret (kind and standalone KFP: mlpipeline-minio-artifact; its service
# minio-service answers S3, whether MinIO or SeaweedFS stands behind it).
STORE_SECRET = "mlpipeline-minio-artifact"  # nosec B105  # a Secret's name, not a secret
KFP_STORE_REGISTRY = "s3://mlpipeline/kfp-rai/registry?endpoint_override=minio-service.kubeflow:9000&scheme=http"


def reads_store(task):
    """Credentials of the object store for a task that reads the registry or a file given by URI
    (optional: a registry on a volume needs none)."""
    kubernetes.use_secret_as_env(
        task,
        secret_name=STORE_SECRET,
        secret_key_to_env={"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"},
        optional=True,
    )
    return task


# The public half of the decision key (people's approvals) verifies the registry's history; its private
# half never reaches a pipeline, so no run can approve or promote anything.
_DECISION_VERIFY = {"decision-verify-key.pem": "KFP_RAI_DECISION_VERIFY_KEY"}


def signs(task):
    kubernetes.use_secret_as_env(
        task,
        secret_name=SIGNING_SECRET,
        secret_key_to_env={
            "signing-key.pem": "KFP_RAI_SIGNING_KEY",
            "verify-key.pem": "KFP_RAI_VERIFY_KEY",
            **_DECISION_VERIFY,
        },
        optional=True,  # without it the task fails closed with the command to create it
    )
    return task


def verifies(task):
    kubernetes.use_secret_as_env(
        task,
        secret_name=SIGNING_SECRET,
        secret_key_to_env={"verify-key.pem": "KFP_RAI_VERIFY_KEY", **_DECISION_VERIFY},
        optional=True,
    )
    return task


def resources(task, size=SMALL):
    cpu_request, cpu_limit, memory_request, memory_limit = size
    reads_store(task)  # every task reads the human-written files, which may be URIs in the store
    return (
        task.set_cpu_request(cpu_request)
        .set_cpu_limit(cpu_limit)
        .set_memory_request(memory_request)
        .set_memory_limit(memory_limit)
    )


def hmac_key(task):
    """The pseudonymization key from its Secret (optional: only needed when columns are
    pseudonymized; the task fails closed if they are and the key is missing)."""
    kubernetes.use_secret_as_env(
        task, secret_name=PSEUDONYMIZATION_SECRET, secret_key_to_env={"hmac-key": "KFP_RAI_HMAC_KEY"}, optional=True
    )
    return task.set_caching_options(False)


AUDIT_SECRET = "kfp-rai-audit"  # nosec B105  # a Secret's name, not a secret


def audit_key(task):
    """The serving audit key (optional: only a refresh reading serving's traffic summaries needs it)."""
    kubernetes.use_secret_as_env(
        task, secret_name=AUDIT_SECRET, secret_key_to_env={"audit-key": "KFP_RAI_AUDIT_KEY"}, optional=True
    )
    return task


def load(**kwargs):
    """load_dataset with retries (storage hiccups), no cache (the same path may hold new data) and
    the pseudonymization key."""
    return hmac_key(resources(load_dataset(**kwargs)).set_retry(num_retries=2, backoff_duration="30s"))


def build_and_judge(
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
    training_data: str = "",
    pseudonymize=None,
    after=None,
    deploy=None,
    serving_namespace=None,
    then=None,
    challenger_of=None,
    refresh_report=None,
    notify_url: str = "",
    why: str = "",
):
    """Discovery → training → validation → production on ``data``; returns the split, training and
    card tasks. A blocked model takes its own branch (stop-blocked-model); a registered one is a
    candidate, and ``then(registered)`` wires what follows a registration (the lifecycle's refresh).

    A challenger (``challenger_of``: the resolve_champion task; ``refresh_report``: why it exists) is
    also compared with the champion on the same held-out rows (its non-regression gate, on its
    card), registered under the challenger alias, and announced (notify_challenger); never deployed.

    ``.after`` keeps the stages in order where the data flow alone would not (the datasheet, discovery's
    decision, before training), so a run reads, locally and in the Kubeflow graph, stage by stage.
    """
    split = resources(split_dataset(dataset=data, target=target, test_size=test_size, seed=seed))
    if after is not None:
        split.after(after)
    representativeness = resources(
        check_representativeness(
            dataset=data,
            sensitive_features=sensitive_features,
            reference_population=reference_population,
            policy=policy,
        ).after(split)
    )
    datasheet = resources(
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
    signs(resources(trained, LARGE))
    explained = explain_model(
        model=trained.outputs["model"],
        data=split.outputs["test"],
        sensitive_features=sensitive_features,
        policy=policy,
        seed=seed,
        datasheet=sheet,
    )
    verifies(resources(explained, LARGE))
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
    verifies(resources(validated))
    challenger = {}
    if challenger_of is not None:
        compared = compare_models(
            champion=challenger_of.outputs["champion"],
            challenger=trained.outputs["model"],
            test=split.outputs["test"],
            sensitive_features=sensitive_features,
            policy=policy,
            seed=seed,
        )
        verifies(resources(compared)).after(validated)
        challenger = {"refresh_report": refresh_report, "comparison_report": compared.outputs["report"]}
    card = write_model_card(
        model=trained.outputs["model"],
        representativeness_report=representativeness.outputs["report"],
        validation_report=validated.outputs["report"],
        explanation_report=explained.outputs["report"],
        intended_use=intended_use,
        datasheet=sheet,
        policy=policy,
        **challenger,
    )
    verifies(resources(card))
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
            prediction_reference=validated.outputs["prediction_reference"],
            training_data=training_data,
            sensitive_features=sensitive_features,
            test_size=test_size,
            pseudonymize=pseudonymize if pseudonymize is not None else [],
            intended_use=intended_use,
            alias="challenger" if challenger_of is not None else "",
        )
        # Registration writes a new version each time: never answer it from the cache.
        signs(resources(registered)).set_caching_options(False)
        if challenger_of is not None:
            notified = notify_challenger(
                registered=registered.outputs["registered"],
                next_step=registered.outputs["next_step"],
                why=why,
                notify_url=notify_url,
                policy=policy,
            )
            resources(notified).set_caching_options(False)
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
                verifies(resources(deployed)).set_caching_options(False).set_env_variable("KFP_RAI_IMAGE", IMAGE)
        if then is not None:
            then(registered)
    with dsl.Else(name="model-blocked"):
        blocked = stop_blocked_model(
            status=card.outputs["status"], reason=card.outputs["reason"], fail_run=fail_when_blocked
        )
        resources(blocked).set_display_name("model blocked: nothing registered")
    return split, trained, card
