"""Deployment of an approved model to the serving app, by Kubernetes server-side apply.

The serving Deployment, its Service and every security setting belong to the operator's
manifests (``manifests/base/serving.yaml``, shipped in the package as ``data/k8s/serving.yaml``;
a test keeps the two identical). The deploy step owns only what changes with a model, and
applies only that (server-side apply, field manager ``kfp-rai``):

- a ConfigMap per model (name carries version and hash; immutable; binaryData verified by
  sha256 when the server loads it), mounted at ``/models``;
- on the Deployment: ``replicas: 1``, the ConfigMap the ``models`` volume mounts, the container
  image (the image that validated the model serves it) and pod-template annotations with the
  version and hash, so a new version rolls out and ``kubectl rollout undo`` rolls back.

Fields it does not send (probes, security context, pull policy, the Service's type) stay as the
operator's manifests set them. Outside a cluster nothing is applied and the report says so.
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
from kfp_rai.errors import DeploymentError, InvalidParameterError

SERVING_NAME = "kfp-rai-serving"
SERVING_CONTAINER = "serving"
MODELS_VOLUME = "models"
FIELD_MANAGER = "kfp-rai"
MAX_CONFIGMAP_BYTES = 1_000_000  # Kubernetes refuses ConfigMaps over 1 MiB
_TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "k8s" / "serving.yaml"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def in_cluster() -> bool:
    """True inside a Kubernetes pod (the API server's address is in the environment)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def _configmap_name(model_name: str, version: str, model_sha256: str) -> str:
    """Unique per model bytes: an immutable ConfigMap can never be asked to change."""
    name = f"kfp-rai-model-{model_name}-{version}-{model_sha256[:12]}".lower().replace("_", "-")
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
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
    """What the deploy step applies for one model: its ConfigMap and the Deployment fields it owns."""
    size = sum(len(v) for v in model_files.values())
    if size > MAX_CONFIGMAP_BYTES:
        raise InvalidParameterError(
            f"the model files are {size} bytes; a ConfigMap holds at most {MAX_CONFIGMAP_BYTES}: "
            "serve it from an object store the serving pods can read (--model-uri s3://...)"
        )
    cm_name = _configmap_name(model_name, version, model_sha256)
    annotations = {"kfp-rai/model": model_name, "kfp-rai/model-version": version, "kfp-rai/model-sha256": model_sha256}
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": cm_name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "kfp-rai", "kfp-rai/model": model_name},
            "annotations": annotations,
        },
        "binaryData": {k: base64.b64encode(v).decode("ascii") for k, v in model_files.items()},
        "immutable": True,
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": SERVING_NAME, "namespace": namespace},
        "spec": {
            "replicas": 1,  # the base manifest serves nothing until a model is deployed
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {
                    "containers": [{"name": SERVING_CONTAINER, "image": image}],
                    "volumes": [{"name": MODELS_VOLUME, "configMap": {"name": cm_name}}],
                },
            },
        },
    }
    return [configmap, deployment]


def _merge(base: Any, patch: Any) -> Any:
    """Merge ``patch`` into ``base`` as server-side apply does for these objects: maps field by
    field, lists of named items by ``name``, anything else replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: _merge(base[k], v) if k in base else v for k, v in patch.items()}}
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        merged = {i["name"]: i for i in base}
        for item in patch:
            merged[item["name"]] = _merge(merged[item["name"]], item) if item["name"] in merged else item
        return list(merged.values())
    return copy.deepcopy(patch)


def serving_after_deploy(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The serving Deployment as the cluster will hold it after ``objects`` are applied over the
    packaged base manifest: evidence of what will run, and what the offline checks validate."""
    base = next(d for d in yaml.safe_load_all(_TEMPLATE.read_text(encoding="utf-8")) if d["kind"] == "Deployment")
    patch = next(o for o in objects if o["kind"] == "Deployment")
    base["metadata"]["namespace"] = patch["metadata"]["namespace"]
    return _merge(base, patch)


def _api_path(obj: dict[str, Any]) -> str:
    kind, name, namespace = obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"]
    plural = {"ConfigMap": "configmaps", "Deployment": "deployments"}[kind]
    prefix = "/apis/apps/v1" if kind == "Deployment" else "/api/v1"
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"


def _api_message(exc: Any) -> str:
    """The API server's one-line reason from an ApiException (its body is a Status object)."""
    import json

    try:
        message = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return " ".join(f"HTTP {exc.status} {exc.reason}: {message}".split())


def apply_objects(objects: list[dict[str, Any]], api: Any = None) -> None:
    """Server-side apply each object, by default with the in-cluster service account's credentials
    (``api``: a ``kubernetes.client.ApiClient`` for another cluster).

    The serving Deployment must already exist (installed from ``manifests/``): the step sends only
    the fields it owns, and refuses rather than create a Deployment without the security settings.
    Every failure is one DeploymentError line naming the object and what to do.
    """
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    if api is None:
        try:
            config.load_incluster_config()
        except ConfigException as exc:
            raise DeploymentError(f"cannot use the in-cluster Kubernetes credentials: {exc}") from exc
        api = client.ApiClient()
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    namespace = deployment["metadata"]["namespace"]
    target = f"deployment {namespace}/{SERVING_NAME}"
    hint_403 = "launch the run with the service account kfp-rai-deployer (manifests/base/rbac.yaml)"
    try:
        client.AppsV1Api(api).read_namespaced_deployment(SERVING_NAME, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise DeploymentError(
                f"{target} does not exist: install the serving app first "
                "(kubectl apply -k manifests/overlays/<yours>); the deploy step only swaps models"
            ) from exc
        hint = f"; {hint_403}" if exc.status == 403 else ""
        raise DeploymentError(f"cannot read {target}: {_api_message(exc)}{hint}") from exc
    except HTTPError as exc:
        raise DeploymentError(f"cannot reach the Kubernetes API server: {exc}") from exc
    for obj in objects:
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
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
        except ApiException as exc:
            hint = f"; {hint_403}" if exc.status == 403 else ""
            raise DeploymentError(f"server-side apply of {what} failed: {_api_message(exc)}{hint}") from exc
        except HTTPError as exc:
            raise DeploymentError(f"server-side apply of {what}: cannot reach the API server: {exc}") from exc


def manifest_yaml(objects: list[dict[str, Any]]) -> str:
    """Evidence: the applied objects (model bytes by size; their hash is annotated), then the
    serving Deployment as it will run after the apply."""
    shown = [
        dict(o, binaryData={k: f"<{len(v)} base64 characters>" for k, v in o["binaryData"].items()})
        if o["kind"] == "ConfigMap"
        else o
        for o in objects
    ]
    header = "# applied (server-side apply, field manager kfp-rai):\n"
    result = (
        "# the serving Deployment after the apply, as packaged base manifest + the fields above\n"
        "# (an overlay installed in the cluster, e.g. kind's imagePullPolicy, stays as installed):\n"
    )
    return (
        header
        + yaml.safe_dump_all(shown, sort_keys=False)
        + "---\n"
        + result
        + yaml.safe_dump(serving_after_deploy(objects), sort_keys=False)
    )


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
