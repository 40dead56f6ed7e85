"""Server-side apply of InferenceServices against the Kubernetes API (kubernetes client), with
one-line errors."""

from __future__ import annotations

import os
from typing import Any

from kfp_rai.errors import DeploymentError

FIELD_MANAGER = "kfp-rai"
_HINT_403 = "launch the run with the service account kfp-rai-deployer (manifests/base/rbac.yaml)"


def in_cluster() -> bool:
    """True inside a Kubernetes pod (the API server's address is in the environment)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


# What the deploy step applies: an InferenceService and the claims of its audit volumes.
_RESOURCES = {("serving.kserve.io/v1beta1", "InferenceService"): "inferenceservices",
              ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims"}  # fmt: skip


def _api_path(obj: dict[str, Any]) -> str:
    group_version, name, namespace = obj["apiVersion"], obj["metadata"]["name"], obj["metadata"]["namespace"]
    resource = _RESOURCES.get((group_version, obj["kind"]))
    if resource is None:
        raise DeploymentError(
            f"the deploy step applies InferenceServices and their audit volume claims only, not {obj['kind']}"
        )
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    return f"{base}/namespaces/{namespace}/{resource}/{name}"


def _api_message(exc: Any) -> str:
    """The API server's one-line reason from an ApiException (its body is a Status object)."""
    import json

    try:
        message = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return " ".join(f"HTTP {exc.status} {exc.reason}: {message}".split())


def apply_objects(objects: list[dict[str, Any]], api: Any = None) -> None:
    """Server-side apply each object, in order (created if missing, else patched: the fields
    kfp-rai owns change, KServe's and other managers' stay), by default with the in-cluster
    service account's credentials (``api``: a ``kubernetes.client.ApiClient`` for another cluster).

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
            if exc.status == 404:
                raise DeploymentError(
                    f"server-side apply of {what} failed: {_api_message(exc)}; is KServe installed (the "
                    "InferenceService API; scripts/kind-up.sh shows how) and does the namespace exist?"
                ) from exc
            hint = f"; {_HINT_403}" if exc.status == 403 else ""
            raise DeploymentError(f"server-side apply of {what} failed: {_api_message(exc)}{hint}") from exc
        except HTTPError as exc:
            raise DeploymentError(f"server-side apply of {what}: cannot reach the API server: {exc}") from exc
