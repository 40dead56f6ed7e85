"""Production components: the model card and registration."""

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
    model_name: str,
    intended_use: str,
    card: Output[Markdown],
    card_html: Output[HTML],
    card_json: Output[Artifact],
) -> NamedTuple("CardOutputs", eligible=bool, reason=str):
    """Write the model card (Markdown, HTML, JSON) for a trained candidate, blocked or not.

    ``eligible`` is true only when the representativeness and validation gates both passed; the
    card names the gate and the reason otherwise. Pipelines register the model only if eligible.
    """
    from collections import namedtuple

    from kfp_rai._artifacts import load_model_dir
    from kfp_rai.io import atomic_write_text, read_json, write_json
    from kfp_rai.production import build_model_card

    _, meta = load_model_dir(model.path, model.metadata.get("sha256"))
    result = build_model_card(
        model_name=model_name,
        model_metadata=meta,
        training=meta,
        representativeness=read_json(representativeness_report.path),
        validation=read_json(validation_report.path),
        explanation=read_json(explanation_report.path),
        intended_use=intended_use,
    )
    atomic_write_text(card.path, result.to_markdown())
    atomic_write_text(card_html.path, result.to_html())
    write_json(card_json.path, result.to_dict())
    card.metadata.update(
        {"model_sha256": meta["sha256"], "eligible": result.approved_for_registration, "reason": result.reason}
    )
    return namedtuple("CardOutputs", ["eligible", "reason"])(result.approved_for_registration, result.reason)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    model_card: Input[Markdown],
    model_name: str,
    registry_uri: str,
    registered: Output[Model],
) -> NamedTuple("RegisterOutputs", version=str, sha256=str, uri=str):
    """Store the model and its card as a new version in the registry at ``registry_uri``.

    Refuses (GateFailedError) unless ``model_card`` is the eligible card of this very model, so
    a pipeline without a ``dsl.If`` on the card still cannot register a blocked model.

    ``registry_uri`` is a directory or a pyarrow URI (``s3://bucket/models``); empty keeps the
    registry inside this task's output artifact. The model's hash is verified before it is stored.
    """
    from collections import namedtuple
    from pathlib import Path

    from kfp_rai._artifacts import MODEL_FILE, load_model_dir
    from kfp_rai.production import ModelRegistry, check_registrable

    _, meta = load_model_dir(model.path, model.metadata.get("sha256"))
    check_registrable(dict(model_card.metadata), meta["sha256"])
    registry = ModelRegistry(registry_uri or registered.path)
    entry = registry.register(
        model_name,
        model=(Path(model.path) / MODEL_FILE).read_bytes(),
        model_card=Path(model_card.path).read_text(encoding="utf-8"),
        metadata=meta,
    )
    Path(registered.path).mkdir(parents=True, exist_ok=True)
    registered.metadata.update({**entry.metadata, "registry_uri": registry.uri, "uri": entry.uri})
    return namedtuple("RegisterOutputs", ["version", "sha256", "uri"])(entry.version, entry.sha256, entry.uri)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy_model(
    model: Input[Model],
    registered: Input[Model],
    namespace: str,
    report: Output[Artifact],
    manifest: Output[Artifact],
) -> NamedTuple("DeployOutputs", deployed=bool, reason=str):
    """Serve a registered model: server-side apply of its ConfigMap and of the serving
    Deployment's model fields (replicas, image, models volume, version annotations).

    Inside a cluster (run the pipeline with the ``kfp-rai-deployer`` service account) the serving
    Deployment installed from ``manifests/`` in ``namespace`` rolls out the new version; it must
    exist (the task fails with the command to install it otherwise). Elsewhere nothing is applied
    and ``deployed`` is false with the reason. ``manifest`` holds the applied objects and the
    resulting Deployment either way (evidence); the image is this task's own (``KFP_RAI_IMAGE``).
    """
    from collections import namedtuple

    from kfp_rai._artifacts import write_report
    from kfp_rai._image import IMAGE as SERVING_IMAGE
    from kfp_rai.io import atomic_write_text
    from kfp_rai.production._deploy import deploy_model as deploy
    from kfp_rai.production._deploy import manifest_yaml

    result, objects = deploy(
        model.path,
        model_name=registered.metadata["name"],
        version=str(registered.metadata["version"]),
        image=SERVING_IMAGE,
        namespace=namespace,
    )
    write_report(result, report.path)
    atomic_write_text(manifest.path, manifest_yaml(objects))
    return namedtuple("DeployOutputs", ["deployed", "reason"])(result.deployed, result.reason)
