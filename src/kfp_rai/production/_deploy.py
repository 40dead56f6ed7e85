"""The deploy step: serve a registered model version as a KServe InferenceService.

In a cluster the InferenceService is created or patched (server-side apply); elsewhere nothing is
applied, the report says so and the rendered object stays as evidence (see
:mod:`kfp_rai.production._inference_service`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from kfp_rai.core.model_dir import read_model_metadata
from kfp_rai.core.report import Report, Section, Table
from kfp_rai.core.verdict import GateStatus, Verdict
from kfp_rai.errors import DeploymentError
from kfp_rai.production._inference_service import STOP_ANNOTATION, render_audit_claims, render_inference_service
from kfp_rai.production._kube import apply_objects, in_cluster
from kfp_rai.production._registry import ModelRegistry


@dataclass(frozen=True)
class DeploymentReport(Report):
    """What was (or would have been) applied, and whether it was."""

    kind = "deployment_report"
    title = "Deployment"

    verdict: Verdict
    deployed: bool
    namespace: str
    model_name: str
    model_version: str
    model_sha256: str
    image: str
    objects: tuple[str, ...]
    storage_uri: str = ""

    def verdict_label(self) -> str:
        return "DEPLOYED" if self.deployed else "NOT DEPLOYED"

    def sections(self) -> list[Section]:
        isvc = next((o.split("/", 1)[1] for o in self.objects if o.startswith("InferenceService/")), "NAME")
        where = f"-n {self.namespace} inferenceservice/{isvc}"
        rows = (
            ("model", f"{self.model_name} version {self.model_version}"),
            ("sha256", self.model_sha256),
            ("storageUri", self.storage_uri or "(none: the registry is not reachable from a cluster)"),
            ("image", self.image),
            ("namespace", self.namespace),
            ("objects", ", ".join(self.objects)),
        )
        return [
            Section(
                "Serving (KServe)",
                (
                    Table(("field", "value"), rows),
                    f"Stop: `kubectl annotate {where} {STOP_ANNOTATION}=true --overwrite` (KServe removes the "
                    f"predictor; remove the annotation to resume). Roll back: apply the InferenceService of the "
                    "version to return to (this step's manifest output of that run, or `kfp-rai deploy-manifest "
                    "--model-uri URI_OF_THAT_VERSION`).",
                ),
            )
        ]


def deploy_model(
    model_dir: str | os.PathLike[str],
    *,
    model_name: str,
    version: str,
    storage_uri: str | None,
    image: str,
    namespace: str = "kfp-rai",
    apply: bool = True,
    approval_event: str | None = None,
) -> tuple[DeploymentReport, list[dict[str, Any]]]:
    """Render the InferenceService for a registered version and apply it when in a cluster
    (``apply=False``: render only, e.g. for an operator to apply with their own credentials).

    ``storage_uri`` is the version as KServe fetches it (:func:`storage_uri`); None means the
    registry is not reachable from a cluster: rendered as evidence outside one, refused inside.
    """
    meta = read_model_metadata(model_dir)  # verifies the signature before anything ships
    isvc = render_inference_service(
        model_name=model_name,
        version=version,
        model_sha256=meta["sha256"],
        storage=storage_uri or "UNREACHABLE",
        image=image,
        namespace=namespace,
        approval_event=approval_event,
    )
    objects = [*render_audit_claims(model_name, namespace), isvc]  # the volumes first: the pod mounts them
    names = tuple(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    if apply and in_cluster():
        if storage_uri is None:
            raise DeploymentError(
                "the registry version is a local path no KServe storage initializer can fetch: run with "
                "registry_uri=s3://... (or pvc://...), or leave it empty to use the pipeline's artifact store"
            )
        apply_objects(objects)
        deployed, reason = True, f"applied {', '.join(names)} in namespace {namespace} (server-side apply)"
    else:
        deployed = False
        reason = (
            "skipped: not running in a Kubernetes cluster (KUBERNETES_SERVICE_HOST is unset); "
            "the InferenceService that would be applied is in the manifest output"
            if apply
            else "rendered only (apply=False)"
        )
    # Not a gate: a deployment that happened is passed; one skipped outside a cluster decided nothing.
    report = DeploymentReport(
        verdict=Verdict(GateStatus.PASSED if deployed else GateStatus.NOT_JUDGED, reason),
        deployed=deployed,
        namespace=namespace,
        model_name=model_name,
        model_version=version,
        model_sha256=meta["sha256"],
        image=image,
        objects=names,
        storage_uri=storage_uri or "",
    )
    return report, objects


def deploy_production(
    registry: ModelRegistry,
    name: str,
    *,
    by: str,
    namespace: str = "kfp-rai",
    image: str | None = None,
    storage: str | None = None,
    manifest_path: str | os.PathLike[str] | None = None,
    record_unapplied: bool = True,
) -> DeploymentReport:
    """Deploy the version the ``production`` alias names, never another: apply its
    InferenceService in a cluster, else write it to ``manifest_path``; record a ``deployed`` event
    (for a manifest only written, only with ``record_unapplied``: a person's `--deploy` is, a
    pipeline's local run is not).

    The InferenceService carries the signed promotion event, so the server in the pod checks that a
    person promoted exactly this model before it serves.
    """
    import base64
    import tempfile

    from kfp_rai._image import IMAGE
    from kfp_rai.core.files import atomic_write_text, sha256_bytes
    from kfp_rai.core.model_dir import fetch_version
    from kfp_rai.production._approval import authorizing_event
    from kfp_rai.production._governance import read_state, record_deployment, verified_version
    from kfp_rai.production._inference_service import manifest_yaml, storage_uri
    from kfp_rai.production._state import PRODUCTION

    state = read_state(registry, name, remember=record_unapplied)
    if PRODUCTION not in state.aliases:
        why = (
            f"nothing deployed: no version of {name} is in production yet; a person approves and promotes one "
            "(kfp-rai models approve / promote), and deployment only ever serves what production names"
        )
        if manifest_path is not None:
            atomic_write_text(manifest_path, f"# {why}\n")
        verdict = Verdict(GateStatus.NOT_JUDGED, why)
        return DeploymentReport(verdict, False, namespace, name, "", "", image or IMAGE, ())
    record = state.resolve(PRODUCTION)
    event = authorizing_event(state, record.version)
    if event is None:  # the rules make this impossible for a verified log; fail closed anyway
        raise DeploymentError(f"version {record.version} of {name} has no promotion event: refusing to deploy it")
    entry, _ = verified_version(registry, record, name)
    signed = base64.b64encode(registry.events(name).raw(event)).decode("ascii")
    target = storage or storage_uri(entry.uri)
    with tempfile.TemporaryDirectory(prefix="kfp-rai-version-") as scratch:
        report, objects = deploy_model(
            fetch_version(entry.uri, scratch),
            model_name=name,
            version=record.version,
            storage_uri=target,
            image=image or IMAGE,
            namespace=namespace,
            apply=in_cluster(),
            approval_event=signed,
        )
    text = manifest_yaml(objects)
    where = f"{namespace}/inferenceservice/{objects[-1]['metadata']['name']}"
    if not report.deployed:
        if manifest_path is None:
            return report
        atomic_write_text(manifest_path, text)
        where = str(manifest_path)
        report = dataclasses.replace(
            report,
            verdict=Verdict(
                GateStatus.NOT_JUDGED,
                f"not in a cluster: wrote the InferenceService of {name} version {record.version} to {where} "
                f"(apply it with kubectl apply --server-side -f {where})"
                + (
                    ""
                    if target
                    else "; its storageUri is UNREACHABLE: pass --storage-uri as the cluster sees the registry"
                ),
            ),
        )
    if report.deployed or record_unapplied:
        record_deployment(
            registry,
            name,
            by=by,
            target=where,
            applied=report.deployed,
            manifest_sha256=sha256_bytes(text.encode()),
            person=record_unapplied,  # a person's --deploy records even a manifest; a pipeline's only an apply
        )
    return report
