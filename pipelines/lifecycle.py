"""lifecycle_pipeline: the five stages, wired with gates. Wiring only: no logic lives here."""

from kfp import dsl, kubernetes

from kfp_rai._image import IMAGE
from kfp_rai.components import (
    check_representativeness,
    deploy_model,
    detect_drift,
    explain_model,
    load_dataset,
    register_model,
    split_dataset,
    train_model,
    validate_model,
    write_model_card,
)

# Requests/limits per task on a cluster (kfp.local ignores them). Sized on Adult (~50k rows):
# training and SHAP are the heavy steps.
_SMALL = ("250m", "1", "512Mi", "2Gi")
_LARGE = ("1", "2", "2Gi", "6Gi")


def _resources(task, size=_SMALL):
    cpu_request, cpu_limit, memory_request, memory_limit = size
    return (
        task.set_cpu_request(cpu_request)
        .set_cpu_limit(cpu_limit)
        .set_memory_request(memory_request)
        .set_memory_limit(memory_limit)
    )


PSEUDONYMIZATION_SECRET = "kfp-rai-pseudonymization"


def _load(**kwargs):
    """load_dataset with retries (storage hiccups), no cache (the same path may hold new data) and
    the pseudonymization key from its Secret (optional: only needed when columns are pseudonymized;
    the task fails closed if they are and the key is missing)."""
    task = _resources(load_dataset(**kwargs)).set_retry(num_retries=2, backoff_duration="30s")
    kubernetes.use_secret_as_env(
        task, secret_name=PSEUDONYMIZATION_SECRET, secret_key_to_env={"hmac-key": "KFP_RAI_HMAC_KEY"}, optional=True
    )
    return task.set_caching_options(False)


DEFAULT_INTENDED_USE = (
    "Demonstration of a governed model lifecycle on UCI Adult (1994 CPS): predicts whether income "
    "exceeds $50K. Not for decisions about real people."
)


def _build_and_judge(
    data,
    target: str,
    positive_label: str,
    sensitive_features: list[str],
    reference_population: str,
    policy: str,
    model_name: str,
    intended_use: str,
    registry_uri: str,
    test_size: float,
    seed: int,
    deploy: bool,
    serving_namespace: str,
):
    """Split → representativeness → train → validate → explain → card → register if eligible →
    deploy if asked."""
    split = _resources(split_dataset(dataset=data, target=target, test_size=test_size, seed=seed))
    representativeness = _resources(
        check_representativeness(
            dataset=data,
            sensitive_features=sensitive_features,
            reference_population=reference_population,
            policy=policy,
        )
    )
    trained = train_model(
        train=split.outputs["train"],
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        policy=policy,
        seed=seed,
    )
    _resources(trained, _LARGE)
    validated = validate_model(
        model=trained.outputs["model"],
        test=split.outputs["test"],
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        policy=policy,
        seed=seed,
    )
    _resources(validated)
    explained = explain_model(
        model=trained.outputs["model"],
        data=split.outputs["test"],
        sensitive_features=sensitive_features,
        policy=policy,
        seed=seed,
    )
    _resources(explained, _LARGE)
    card = write_model_card(
        model=trained.outputs["model"],
        representativeness_report=representativeness.outputs["report"],
        validation_report=validated.outputs["report"],
        explanation_report=explained.outputs["report"],
        model_name=model_name,
        intended_use=intended_use,
    )
    _resources(card)
    with dsl.If(card.outputs["eligible"] == True, name="every-gate-passed"):  # noqa: E712 - kfp needs ==
        registered = register_model(
            model=trained.outputs["model"],
            model_card=card.outputs["card"],
            model_name=model_name,
            registry_uri=registry_uri,
        )
        # Registration writes a new version each time: never answer it from the cache.
        _resources(registered).set_caching_options(False)
        # Deployment is a human decision taken when launching the run (deploy=true).
        with dsl.If(deploy == True, name="deployment-requested"):  # noqa: E712
            deployed = deploy_model(
                model=trained.outputs["model"],
                registered=registered.outputs["registered"],
                namespace=serving_namespace,
            )
            _resources(deployed).set_caching_options(False).set_env_variable("KFP_RAI_IMAGE", IMAGE)
    return split


@dsl.pipeline(
    name="kfp-rai-lifecycle",
    description=(
        "Responsible-AI lifecycle: discovery (data checks, representativeness) → training → validation "
        "(performance, fairness, explanations) → production (model card, gated registration) → refresh "
        "(drift; retrain, re-judge and re-register on drift)."
    ),
)
def lifecycle_pipeline(
    data: str = "bundled:adult",
    current_data: str = "bundled:adult-test",
    target: str = "income",
    positive_label: str = ">50K",
    sensitive_features: list[str] = ["sex", "race"],  # noqa: B006 - kfp pipeline defaults are literals
    reference_population: str = "",
    policy: str = "",
    model_name: str = "adult-income",
    intended_use: str = DEFAULT_INTENDED_USE,
    registry_uri: str = "",
    test_size: float = 0.3,
    seed: int = 0,
    deploy: bool = False,
    serving_namespace: str = "kfp-rai",
    pseudonymize: list[str] = [],  # noqa: B006
):
    """Run the five stages on ``data``; monitor ``current_data`` for drift and retrain on it.

    ``reference_population`` and ``policy`` take YAML text (empty: the bundled US Census 2000
    shares and the default Policy). ``registry_uri`` is a directory or s3:// URI (empty: the
    registry stays in the register task's output artifact). ``deploy=true`` serves a registered
    model in ``serving_namespace`` (in a cluster; run it with the ``kfp-rai-deployer`` service
    account); locally the deploy step reports why it skipped.
    """
    schema = dict(
        target=target, positive_label=positive_label, sensitive_features=sensitive_features, pseudonymize=pseudonymize
    )
    loaded = _load(source=data, **schema)
    common = dict(
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        reference_population=reference_population,
        policy=policy,
        model_name=model_name,
        intended_use=intended_use,
        registry_uri=registry_uri,
        test_size=test_size,
        seed=seed,
        deploy=deploy,
        serving_namespace=serving_namespace,
    )
    split = _build_and_judge(loaded.outputs["dataset"], **common)
    current = _load(source=current_data, **schema)
    drift = detect_drift(reference=split.outputs["train"], current=current.outputs["dataset"], policy=policy)
    # Drift is a judgement about *now*: always recompute it.
    _resources(drift).set_caching_options(False)
    with dsl.If(drift.outputs["drift_detected"] == True, name="drift-detected"):  # noqa: E712
        _build_and_judge(current.outputs["dataset"], **common)
