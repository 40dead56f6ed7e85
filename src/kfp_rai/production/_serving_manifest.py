"""What the deploy step applies for one model, rendered offline: its ConfigMap and the fields of
the serving Deployment it owns, and the Deployment as the cluster will hold it afterwards.

The serving Deployment, its Service and every security setting belong to the operator's
manifests (``manifests/base/serving.yaml``, shipped in the package as ``data/k8s/serving.yaml``;
a test keeps the two identical). The deploy step owns only what changes with a model:

- a ConfigMap per model (name carries version and hash; immutable; binaryData verified by
  sha256 when the server loads it), mounted at ``/models``;
- on the Deployment: ``replicas: 1``, the ConfigMap the ``models`` volume mounts, the container
  image (the image that validated the model serves it) and pod-template annotations with the
  version and hash, so a new version rolls out and ``kubectl rollout undo`` rolls back.
"""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

import yaml

from kfp_rai.core.bundled import data_path
from kfp_rai.errors import InvalidParameterError

SERVING_NAME = "kfp-rai-serving"
SERVING_CONTAINER = "serving"
MODELS_VOLUME = "models"
MAX_CONFIGMAP_BYTES = 1_000_000  # Kubernetes refuses ConfigMaps over 1 MiB
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


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
    base = next(
        d
        for d in yaml.safe_load_all(data_path("k8s", "serving.yaml").read_text(encoding="utf-8"))
        if d["kind"] == "Deployment"
    )
    patch = next(o for o in objects if o["kind"] == "Deployment")
    base["metadata"]["namespace"] = patch["metadata"]["namespace"]
    merged: dict[str, Any] = _merge(base, patch)
    return merged


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
