"""Deployment of an approved model to the serving app, by Kubernetes server-side apply.

The serving Deployment and Service are the ones in ``manifests/base/serving.yaml`` (shipped in
the package as ``data/k8s/serving.yaml``; a test keeps the two identical). For a model version,
the model files travel in a ConfigMap (binaryData, verified by sha256 when the server loads them)
mounted where ``MODEL_URI`` points, and the pod template is annotated with the version and hash,
so a new version rolls out and ``kubectl rollout undo`` rolls back. Outside a cluster nothing is
applied and the report says so.
"""

from __future__ import annotations

import base64
import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kfp_rai._report import Report, Section, Table
from kfp_rai.errors import InvalidParameterError

SERVING_NAME = "kfp-rai-serving"
FIELD_MANAGER = "kfp-rai"
MAX_CONFIGMAP_BYTES = 1_000_000  # Kubernetes refuses ConfigMaps over 1 MiB
_TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "k8s" / "serving.yaml"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def in_cluster() -> bool:
    """True inside a Kubernetes pod (the API server's address is in the environment)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def _configmap_name(model_name: str, version: str) -> str:
    name = f"kfp-rai-model-{model_name}-{version}".lower().replace("_", "-").replace(".", "-")
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise InvalidParameterError(f"model name {model_name!r} version {version!r} make no valid ConfigMap name")
    return name


def render_serving(
    *,
    model_name: str,
    version: str,
    model_sha256: str,
    model_files: dict[str, bytes],
    image: str,
    namespace: str = "kfp-rai",
) -> list[dict[str, Any]]:
    """The objects that serve ``model_name`` version ``version``: ConfigMap, Deployment, Service."""
    size = sum(len(v) for v in model_files.values())
    if size > MAX_CONFIGMAP_BYTES:
        raise InvalidParameterError(
            f"the model files are {size} bytes; a ConfigMap holds at most {MAX_CONFIGMAP_BYTES}: "
            "serve it from an object store the serving pods can read (--model-uri s3://...)"
        )
    cm_name = _configmap_name(model_name, version)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": cm_name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "kfp-rai", "kfp-rai/model": model_name},
            "annotations": {"kfp-rai/model-version": version, "kfp-rai/model-sha256": model_sha256},
        },
        "binaryData": {k: base64.b64encode(v).decode("ascii") for k, v in model_files.items()},
        "immutable": True,
    }
    deployment, service = (copy.deepcopy(d) for d in yaml.safe_load_all(_TEMPLATE.read_text(encoding="utf-8")))
    for obj in (deployment, service):
        obj["metadata"]["namespace"] = namespace
    deployment["spec"]["replicas"] = 1  # the base manifest serves nothing until a model is deployed
    template = deployment["spec"]["template"]
    template["metadata"].setdefault("annotations", {}).update(
        {"kfp-rai/model": model_name, "kfp-rai/model-version": version, "kfp-rai/model-sha256": model_sha256}
    )
    container = template["spec"]["containers"][0]
    container["image"] = image
    mount = f"/models/{model_name}/{version}"
    for env in container["env"]:
        if env["name"] == "MODEL_URI":
            env["value"] = mount
    for volume_mount in container["volumeMounts"]:
        if volume_mount["name"] == "models":
            volume_mount["mountPath"] = mount
    template["spec"]["volumes"] = [
        v if v["name"] != "models" else {"name": "models", "configMap": {"name": cm_name}}
        for v in template["spec"]["volumes"]
    ]
    return [configmap, deployment, service]


def _api_path(obj: dict[str, Any]) -> str:
    kind, name, namespace = obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"]
    plural = {"ConfigMap": "configmaps", "Service": "services", "Deployment": "deployments"}[kind]
    prefix = "/apis/apps/v1" if kind == "Deployment" else "/api/v1"
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"


def apply_objects(objects: list[dict[str, Any]]) -> None:
    """Server-side apply each object with the in-cluster service account's credentials."""
    from kubernetes import client, config

    config.load_incluster_config()
    api = client.ApiClient()
    for obj in objects:
        api.call_api(
            _api_path(obj),
            "PATCH",
            query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
            body=obj,
            auth_settings=["BearerToken"],
            response_type="object",
            _return_http_data_only=True,
        )


def manifest_yaml(objects: list[dict[str, Any]]) -> str:
    """The applied objects as YAML evidence; model bytes appear by size (their hash is annotated)."""
    shown = [
        dict(o, binaryData={k: f"<{len(v)} base64 characters>" for k, v in o["binaryData"].items()})
        if o["kind"] == "ConfigMap"
        else o
        for o in objects
    ]
    return yaml.safe_dump_all(shown, sort_keys=False)


@dataclass(frozen=True)
class DeploymentReport(Report):
    """What was (or would have been) applied, and whether it was."""

    kind = "deployment_report"
    title = "Deployment"

    deployed: bool
    reason: str
    namespace: str
    model_name: str
    model_version: str
    model_sha256: str
    image: str
    objects: tuple[str, ...]

    def verdict(self) -> str:
        return f"**{'DEPLOYED' if self.deployed else 'NOT DEPLOYED'}** — {self.reason}"

    def sections(self) -> list[Section]:
        rows = (
            ("model", f"{self.model_name} version {self.model_version}"),
            ("sha256", self.model_sha256),
            ("image", self.image),
            ("namespace", self.namespace),
            ("objects", ", ".join(self.objects)),
        )
        return [
            Section(
                "Serving",
                (
                    Table(("field", "value"), rows),
                    "Roll back: `kubectl -n kfp-rai rollout undo deployment/kfp-rai-serving`. "
                    "Switch off: `kubectl -n kfp-rai scale deployment/kfp-rai-serving --replicas=0`.",
                ),
            )
        ]


def deploy_model(
    model_dir: str | os.PathLike[str],
    *,
    model_name: str,
    version: str,
    image: str,
    namespace: str = "kfp-rai",
) -> tuple[DeploymentReport, list[dict[str, Any]]]:
    """Render the serving objects for a registered model and apply them when in a cluster."""
    from kfp_rai._artifacts import MODEL_FILE, MODEL_META, load_model_dir

    _, meta = load_model_dir(model_dir)  # verifies the hash before anything ships
    files = {name: (Path(model_dir) / name).read_bytes() for name in (MODEL_FILE, MODEL_META)}
    objects = render_serving(
        model_name=model_name,
        version=version,
        model_sha256=meta["sha256"],
        model_files=files,
        image=image,
        namespace=namespace,
    )
    names = tuple(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    if in_cluster():
        apply_objects(objects)
        deployed, reason = True, f"applied {', '.join(names)} in namespace {namespace} (server-side apply)"
    else:
        deployed = False
        reason = (
            "skipped: not running in a Kubernetes cluster (KUBERNETES_SERVICE_HOST is unset); "
            "the objects that would be applied are in the manifest output"
        )
    report = DeploymentReport(
        deployed=deployed,
        reason=reason,
        namespace=namespace,
        model_name=model_name,
        model_version=version,
        model_sha256=meta["sha256"],
        image=image,
        objects=names,
    )
    return report, objects
