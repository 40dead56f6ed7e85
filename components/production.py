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
    from kfp_rai.production import build_model_card

    meta = read_model_metadata(model.path, model.metadata.get("sha256"))
    result = build_model_card(
        model_name=meta.get("name", ""),
        model_metadata=meta,
        representativeness=read_json(representativeness_report.path),
        validation=read_json(validation_report.path),
        explanation=read_json(explanation_report.path),
        intended_use=intended_use,
        datasheet=read_json(datasheet.path) if datasheet is not None else None,
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
def register_model(
    model: Input[Model],
    model_card: Input[Markdown],
    registry_uri: str,
    registered: Output[Model],
) -> NamedTuple("RegisterOutputs", status=str, passed=bool, reason=str, version=str, sha256=str, uri=str):
    """Store the model and its card as a new version in the registry.

    Refuses (GateFailedError) unless model_card is the eligible card of this very model, so a
    pipeline without a dsl.If on the card still cannot register a blocked model. The model's hash
    is verified before it is stored.

    Args:
        model: The trained model (from train_model).
        model_card: The model card (from write_model_card) whose verdict allows registration.
        registry_uri: A directory or pyarrow URI (s3://bucket/models); empty keeps the registry inside this
            task's output artifact.

    Returns:
        status: The production stage's verdict: passed, or warning when gates recorded warnings.
        passed: True once registered.
        reason: One line: the version registered and the card's verdict.
        version: The new version number (1, 2, ...).
        sha256: The registered model file's sha256.
        uri: Where the version lives (<registry>/<name>/<version>).
        registered: Metadata-only artifact describing the registered version (name, version, uri, lineage).
    """
    from collections import namedtuple
    from pathlib import Path

    from kfp_rai.core.model_dir import MODEL_FILE, REFERENCE_FILE, read_model_files
    from kfp_rai.core.verdict import Verdict
    from kfp_rai.production import ModelRegistry, check_registrable, registration_verdict

    files, meta = read_model_files(model.path, model.metadata.get("sha256"))  # read once, verified
    check_registrable(dict(model_card.metadata), meta["sha256"])
    registry = ModelRegistry(registry_uri or registered.path)
    card_verdict = Verdict.from_dict(model_card.metadata["verdict"])
    entry = registry.register(
        meta["name"],
        model=files[MODEL_FILE],
        model_card=Path(model_card.path).read_text(encoding="utf-8"),
        metadata=meta,
        verdict=card_verdict,  # signed into the version: serving refuses one whose gates did not pass
        extra={k: v for k, v in files.items() if k == REFERENCE_FILE},
    )
    Path(registered.path).mkdir(parents=True, exist_ok=True)
    verdict = registration_verdict(card_verdict, entry)
    registered.metadata.update(
        {**entry.metadata, "registry_uri": registry.uri, "uri": entry.uri, "verdict": verdict.to_dict()}
    )
    outputs = namedtuple("RegisterOutputs", ["status", "passed", "reason", "version", "sha256", "uri"])
    return outputs(verdict.status.value, verdict.passed, verdict.reason, entry.version, entry.sha256, entry.uri)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy_model(
    model: Input[Model],
    registered: Input[Model],
    namespace: str,
    report: Output[Artifact],
    manifest: Output[Artifact],
) -> NamedTuple("DeployOutputs", status=str, deployed=bool, reason=str):
    """Serve a registered model as a KServe InferenceService: server-side apply (create or
    patch) of a custom predictor running this image's `kfp-rai serve`, storageUri = the registry
    version, keys and tokens from Secrets, probes, resources and a locked-down security context.

    Inside a cluster (run the pipeline with the kfp-rai-deployer service account; KServe installed)
    the InferenceService is applied in the serving namespace. Elsewhere nothing is applied and
    deployed is false, with the reason. The image is this task's own (KFP_RAI_IMAGE).

    Args:
        model: The trained model (from train_model).
        registered: The registered version (from register_model).
        namespace: Namespace of the InferenceService (manifests/ prepares kfp-rai).

    Returns:
        status: passed when deployed, not_judged when skipped outside a cluster.
        deployed: True when the InferenceService was applied.
        reason: One line: what was applied where, or why nothing was.
        report: The deployment report as JSON.
        manifest: The InferenceService, as YAML (evidence either way; apply it again to roll back).
    """
    from collections import namedtuple
    from pathlib import Path

    from kfp_rai._image import IMAGE as SERVING_IMAGE
    from kfp_rai.core.evidence import model_subject, write_report
    from kfp_rai.core.files import atomic_write_text
    from kfp_rai.production import deploy_model as deploy
    from kfp_rai.production import manifest_yaml, storage_uri

    result, objects = deploy(
        model.path,
        model_name=registered.metadata["name"],
        version=str(registered.metadata["version"]),
        # the version as KServe's storage initializer fetches it (KFP's artifact store speaks S3)
        storage_uri=storage_uri(registered.metadata["uri"], str(Path(registered.path).resolve()), registered.uri),
        image=SERVING_IMAGE,
        namespace=namespace,
    )
    subject = model_subject(
        registered.metadata, registered.metadata.get("policy_sha256", ""), str(registered.metadata["version"])
    )
    write_report(result, subject, report.path)
    atomic_write_text(manifest.path, manifest_yaml(objects[0]))
    return namedtuple("DeployOutputs", ["status", "deployed", "reason"])(
        result.status.value, result.deployed, result.reason
    )
