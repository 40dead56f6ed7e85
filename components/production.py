"""Production components: the model card (the production gate), registration, deployment."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Model, Output

from kfp_rai._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def write_model_card(
    model: Input[Model],
    representativeness_report: Input[Artifact],
    validation_report: Input[Artifact],
    explanation_report: Input[Artifact],
    intended_use: str,
    card: Output[Markdown],
    card_html: Output[HTML],
    card_json: Output[Artifact],
    datasheet: Input[Artifact] = None,
    refresh_report: Input[Artifact] = None,
    comparison_report: Input[Artifact] = None,
    policy: str = "",
) -> NamedTuple("GateOutputs", status=str, passed=bool, reason=str):
    """Production gate: write the model card (Mitchell et al.: Markdown, HTML, JSON) for a candidate,
    blocked or not.

    The model is eligible for registration only when every gate before it passed or recorded a
    warning; a blocked card names each gate that blocked it and why, lists every finding, and quotes
    the written reason of every gate the policy does not enforce.

    Args:
        model: The trained model (from train_model).
        representativeness_report: The discovery gate's JSON report (from check_representativeness).
        validation_report: The validation gate's JSON report (from validate_model).
        explanation_report: The explainability gate's JSON report (from explain_model).
        intended_use: What the model is for and not for, as written by people.
        datasheet: The datasheet (from write_datasheet); with it, the discovery gate is its verdict
            (representativeness and the collection plan) and the card describes the data from it.
        refresh_report: A challenger's: the refresh report (from monitor_model) that says why it exists.
        comparison_report: A challenger's: its comparison with the champion (from compare_models), its
            non-regression gate.
        policy: The policy YAML; its card section (owner, contact, licence, citation) goes on the card.

    Returns:
        status: The production gate: passed, warning (eligible with recorded warnings) or failed (blocked).
        passed: True when the model is eligible for registration.
        reason: One line: every gate passed, or which gates blocked the model and why.
        card: The model card as Markdown; its metadata (model_sha256, eligible, status, reason, verdict) is what
            register_model checks.
        card_html: The model card as a self-contained HTML page.
        card_json: The model card as JSON.
    """
    from collections import namedtuple

    from kfp_rai.core.evidence import gate_outputs, model_subject, write_report
    from kfp_rai.core.files import read_json
    from kfp_rai.core.model_dir import read_model_metadata
    from kfp_rai.policy import Policy
    from kfp_rai.production import build_model_card

    meta = read_model_metadata(model.path, model.metadata.get("sha256"))
    accountability = Policy.from_yaml(policy).card.to_dict()
    result = build_model_card(
        model_name=meta.get("name", ""),
        model_metadata=meta,
        representativeness=read_json(representativeness_report.path),
        validation=read_json(validation_report.path),
        explanation=read_json(explanation_report.path),
        intended_use=intended_use,
        datasheet=read_json(datasheet.path) if datasheet is not None else None,
        refresh=read_json(refresh_report.path) if refresh_report is not None else None,
        comparison=read_json(comparison_report.path) if comparison_report is not None else None,
        accountability=accountability,
    )
    write_report(result, model_subject(meta, meta.get("policy_sha256", "")), card_json.path, card_html.path, card.path)
    card.metadata.update(
        {
            "model_sha256": meta["sha256"],
            "eligible": result.eligible,
            "status": result.status.value,
            "reason": result.reason,
            "verdict": result.verdict.to_dict(),
        }
    )
    return namedtuple("GateOutputs", ["status", "passed", "reason"])(*gate_outputs(result.verdict))


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def check_registry(registry_uri: str, model_name: str) -> NamedTuple("RegistryOutputs", status=str, reason=str):
    """Check the model registry before anything is trained: it is given, reachable and writable,
    and the model's history (if any) verifies. An empty location, an unreachable or read-only store,
    or a tampered history fails the run here, with one line.

    Args:
        registry_uri: The registry every run registers into: a directory, or
            s3://bucket/prefix?endpoint_override=host:port&scheme=http (KFP's object store; credentials from the
            Secret mlpipeline-minio-artifact).
        model_name: The registered model's name.

    Returns:
        status: passed when the registry can take the model.
        reason: One line: the registry, how many versions the model has, which is in production.
    """
    from collections import namedtuple

    from kfp_rai.production import check_registry as check

    return namedtuple("RegistryOutputs", ["status", "reason"])("passed", check(registry_uri, model_name))


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    model_card: Input[Markdown],
    model_card_json: Input[Artifact],
    registry_uri: str,
    registered: Output[Model],
    next_steps: Output[Markdown],
    policy: str = "",
    collection_plan: str = "",
    reference_population: str = "",
    launched_by: str = "",
    run_id: str = "",
    prediction_reference: Input[Artifact] = None,
    training_data: str = "",
    sensitive_features: list = [],  # noqa: B006 - kfp takes literal defaults
    test_size: float = 0.3,
    pseudonymize: list = [],  # noqa: B006
    intended_use: str = "",
    alias: str = "",
) -> NamedTuple(
    "RegisterOutputs", status=str, passed=bool, reason=str, version=str, sha256=str, uri=str, next_step=str
):
    """Store the model and its card as a new version in the registry: a candidate, which nobody has
    approved yet. Pipelines never approve or promote; a person does (kfp-rai models approve / promote).

    Refuses (GateFailedError) unless model_card is the eligible card of this very model, so a
    pipeline without a dsl.If on the card still cannot register a blocked model. The model's hash
    is verified before it is stored. The stored card names its version; the human-written files the
    model was judged under are stored and signed with it; a signed registered event records who
    launched the run and its id.

    Args:
        model: The trained model (from train_model).
        model_card: The model card (from write_model_card) whose verdict allows registration.
        registry_uri: The registry every run registers into (a directory or s3://bucket/prefix?...).
        model_card_json: The card's JSON (from write_model_card), rendered again to name the version.
        policy: The policy text (or URI) the model was judged under, stored with the version.
        collection_plan: The data collection plan text (or URI), stored with the version.
        reference_population: The reference population text (or URI), stored with the version.
        launched_by: Who launched the run (separation of duties: they may not approve this version).
        run_id: The pipeline run's id, recorded as the registration's evidence.
        prediction_reference: The model's predictions at validation (from validate_model), stored with the
            version: the reference of a refresh's prediction drift.
        training_data: Where the training data came from (its source), recorded so a refresh can train a
            challenger on it and the current data.
        sensitive_features: The sensitive attributes the model was judged on (recorded for a refresh).
        test_size: The held-out share (recorded for a refresh).
        pseudonymize: Identifier columns pseudonymized at load (recorded for a refresh).
        intended_use: The intended use (recorded for a refresh).
        alias: challenger registers a refresh's challenger under that alias; empty: a candidate like any other.

    Returns:
        status: The production stage's verdict: passed, or warning when gates recorded warnings.
        passed: True once registered.
        reason: One line: the version registered and the card's verdict.
        version: The new version number (1, 2, ...).
        sha256: The registered model file's sha256.
        uri: Where the version lives (<registry>/<name>/<version>).
        next_step: What a person does next (review the card, approve or reject, promote).
        registered: Metadata-only artifact describing the registered version (name, version, uri, lineage).
        next_steps: The next step as Markdown, shown on the run page.
    """
    import json
    from collections import namedtuple
    from pathlib import Path

    from kfp_rai.core.bundled import default_collection_plan
    from kfp_rai.core.files import atomic_write_text, text_or_uri
    from kfp_rai.core.model_dir import read_model_files
    from kfp_rai.production import check_registrable, open_registry, register_candidate

    files, meta = read_model_files(model.path, model.metadata.get("sha256"))  # read once, verified
    check_registrable(dict(model_card.metadata), meta["sha256"])
    registry = open_registry(registry_uri)
    # The plan the model was judged under: the bundled data's own when none was given (stored, so a challenger
    # trained on other data is judged under the same one).
    plan = collection_plan or default_collection_plan(training_data)
    texts = {"policy": policy, "collection_plan": plan, "reference_population": reference_population}
    settings = {"training_data": training_data, "sensitive_features": list(sensitive_features),
                "test_size": test_size, "pseudonymize": list(pseudonymize), "intended_use": intended_use}  # fmt: skip
    entry, verdict, step = register_candidate(
        registry,
        files=files,
        meta=meta,
        card_text=Path(model_card.path).read_text(encoding="utf-8"),
        card_json=json.loads(Path(model_card_json.path).read_text(encoding="utf-8")),
        human_texts={k: text_or_uri(v, k.replace("_", " ")) for k, v in texts.items()},
        launched_by=launched_by,
        run_id=run_id,
        settings=settings,
        predictions=Path(prediction_reference.path).read_bytes() if prediction_reference is not None else None,
        alias=alias or None,
    )
    Path(registered.path).mkdir(parents=True, exist_ok=True)
    registered.metadata.update(
        {**entry.metadata, "registry_uri": registry.uri, "uri": entry.uri, "verdict": verdict.to_dict()}
    )
    atomic_write_text(next_steps.path, f"# Next: a person decides\n\n{step}\n")
    outputs = namedtuple("RegisterOutputs", ["status", "passed", "reason", "version", "sha256", "uri", "next_step"])
    return outputs(verdict.status.value, verdict.passed, verdict.reason, entry.version, entry.sha256, entry.uri, step)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def stop_blocked_model(status: str, reason: str, fail_run: bool, report: Output[Markdown]) -> NamedTuple(
    "BlockedOutputs", status=str, reason=str
):
    """The blocked branch of the run graph: a model the gates stopped is named here with the reason,
    and nothing is registered. With fail_run the whole run fails (a team's choice when launching it).

    Args:
        status: The production gate's status (from write_model_card): failed or not_judged.
        reason: The production gate's reason: which gates blocked the model and why.
        fail_run: True makes a blocked model fail the run; false (default) lets the run succeed, the model blocked.

    Returns:
        status: The production gate's status, repeated.
        reason: One line: the model is blocked and why.
        report: The same as Markdown, shown on the run page.
    """
    from collections import namedtuple

    from kfp_rai.core.files import atomic_write_text
    from kfp_rai.production import blocked_verdict

    verdict = blocked_verdict(status, reason, fail_run=fail_run)
    atomic_write_text(report.path, f"# Model blocked\n\n{verdict.reason}\n")
    return namedtuple("BlockedOutputs", ["status", "reason"])(verdict.status.value, verdict.reason)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy_model(
    registry_uri: str,
    model_name: str,
    namespace: str,
    report: Output[Artifact],
    manifest: Output[Artifact],
    launched_by: str = "",
) -> NamedTuple("DeployOutputs", status=str, deployed=bool, reason=str):
    """Serve the version the registry's production alias names (never "what this run trained") as
    a KServe InferenceService: server-side apply (create or patch) of a custom predictor running this
    image's `kfp-rai serve`, storageUri = the registry version, the signed promotion event in its
    environment, keys and tokens from Secrets, probes, resources and a locked-down security context.

    Inside a cluster (run the pipeline with the kfp-rai-deployer service account; KServe installed)
    the InferenceService is applied in the serving namespace and recorded as a deployed event.
    Elsewhere, or when nothing is in production yet, nothing is applied and deployed is false, with
    the reason. The image is this task's own (KFP_RAI_IMAGE).

    Args:
        registry_uri: The registry (as given to register_model).
        model_name: The registered model's name.
        namespace: Namespace of the InferenceService (manifests/ prepares kfp-rai).
        launched_by: Who launched the run, recorded on the deployed event.

    Returns:
        status: passed when deployed, not_judged when skipped.
        deployed: True when the InferenceService was applied.
        reason: One line: what was applied where, or why nothing was.
        report: The deployment report as JSON.
        manifest: The InferenceService, as YAML (evidence; empty when nothing is in production).
    """
    from collections import namedtuple

    from kfp_rai._image import IMAGE as SERVING_IMAGE
    from kfp_rai.core.evidence import write_report
    from kfp_rai.core.report import Subject
    from kfp_rai.production import deploy_production, open_registry

    result = deploy_production(
        open_registry(registry_uri),
        model_name,
        by=f"kfp-rai pipeline run (launched by {launched_by or 'an unrecorded person'})",
        namespace=namespace,
        image=SERVING_IMAGE,
        manifest_path=manifest.path,
        record_unapplied=False,
    )
    subject = Subject(
        model_name=model_name, model_version=result.model_version or None, model_sha256=result.model_sha256
    )
    write_report(result, subject, report.path)
    return namedtuple("DeployOutputs", ["status", "deployed", "reason"])(
        result.status.value, result.deployed, result.reason
    )
