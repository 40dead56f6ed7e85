"""The KServe InferenceService that serves one registered model version, built with the kserve
SDK's typed objects and rendered offline (evidence, ``make verify``) or applied in a cluster.

What serves: the kfp-rai image as a custom predictor (``kfp-rai serve``, the same KServe model
server as locally) in KServe's Standard (raw Deployment, no Knative) mode. KServe's storage
initializer copies ``storageUri`` (the registry version: every file, signature included) to
``/mnt/models``; the server verifies the signature with the public key from a Secret before it
loads anything, and refuses a version whose gates did not pass.

Cluster controls are KServe's own (README, "Serve a registered model"): stop with the annotation
``serving.kserve.io/stop: "true"`` (:data:`STOP_ANNOTATION`), roll back by applying the previous
version's InferenceService (the deploy step's manifest output of that run, or ``kfp-rai
deploy-manifest``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from kfp_rai.core.kserve_sdk import kserve
from kfp_rai.errors import InvalidParameterError

# KServe >= 0.15 calls the raw-Deployment mode "Standard" ("RawDeployment" remains an alias).
DEPLOYMENT_MODE = "Standard"
STOP_ANNOTATION = "serving.kserve.io/stop"
SERVING_ACCOUNT = "kfp-rai-serving"
PORT = 8080
DECISION_VERIFY_KEY_FILE_ENV, DECISION_VERIFY_FILE = "KFP_RAI_DECISION_VERIFY_KEY_FILE", "decision-verify-key.pem"
APPROVAL_EVENT_ENV = "KFP_RAI_APPROVAL_EVENT"  # the signed event a person promoted the version with
MODEL_MOUNT = "/mnt/models"  # where KServe's storage initializer puts storageUri
# Two persistent volumes per served model (claims named after the InferenceService, so a promotion
# or rollback to another version keeps writing to them): the audit logs and traffic summaries on
# one, the audit checkpoints, the index of audit logs and the kill switch's state on the other. A
# pod restart, a stop by annotation or a new version keeps every log and the checkpoints that check
# it; keeping the checkpoints apart means a log volume replaced or restored is caught by them.
STATE = "/var/lib/kfp-rai"
CHECKPOINTS = "/var/lib/kfp-rai-state"
CLAIMS = {
    # volume name: (claim name suffix, mount path, requested size)
    "audit-log": ("-audit-log", STATE, "2Gi"),
    "audit-state": ("-audit-state", CHECKPOINTS, "256Mi"),
}
SECRETS = {
    # volume name: (Secret, mount path, env var naming the file, file)
    "verify-key": (
        "kfp-rai-verify-key",
        "/var/run/secrets/kfp-rai-verify",
        "KFP_RAI_VERIFY_KEY_FILE",
        "verify-key.pem",
    ),
    "audit-key": ("kfp-rai-audit", "/var/run/secrets/kfp-rai-audit", "KFP_RAI_AUDIT_KEY_FILE", "audit-key"),
    "pseudonymization-key": (
        "kfp-rai-pseudonymization",
        "/var/run/secrets/kfp-rai",
        "KFP_RAI_HMAC_KEY_FILE",
        "hmac-key",
    ),
    "serving-token": ("kfp-rai-serving-token", "/var/run/secrets/kfp-rai-token", "KFP_RAI_SERVING_TOKEN_FILE", "token"),
}
# Schemes KServe's storage initializer fetches (a local path is not reachable from a pod).
FETCHABLE = ("s3://", "gs://", "pvc://", "https://", "hdfs://", "webhdfs://", "oci://", "hf://")
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME = 45  # KServe derives "<name>-predictor-..." object names that must stay within 63


def isvc_name(model_name: str) -> str:
    """The InferenceService's name for a registered model: a DNS-1035 label."""
    name = model_name.lower().replace("_", "-").replace(".", "-")
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise InvalidParameterError(
            f"model name {model_name!r} makes no InferenceService name: it must start with a letter and "
            f"hold at most {MAX_NAME} letters, digits or '-'"
        )
    return name


def storage_uri(version_uri: str, artifact_path: str | None = None, artifact_uri: str | None = None) -> str | None:
    """The registry version as KServe's storage initializer can fetch it, or None.

    A registry on an object store (``s3://``, ``gs://``) or a volume claim (``pvc://``) is used as
    it is. A registry inside the pipeline's own artifact (the default in Kubeflow) is at a local
    path of the task (``artifact_path``) whose artifact URI is ``minio://`` or ``s3://``: KFP's
    MinIO speaks S3, so the version becomes ``s3://`` under that artifact.
    """
    if version_uri.startswith(FETCHABLE):
        # KServe's storage initializer takes the endpoint from the service account's Secret, not from
        # pyarrow's query options (s3://bucket/path?endpoint_override=...).
        return version_uri.partition("?")[0]
    if artifact_path and artifact_uri and version_uri.startswith(artifact_path.rstrip("/") + "/"):
        remote = artifact_uri.replace("minio://", "s3://", 1).rstrip("/")
        if remote.startswith(FETCHABLE):
            return remote + version_uri[len(artifact_path.rstrip("/")) :]
    return None


def render_inference_service(
    *,
    model_name: str,
    version: str,
    model_sha256: str,
    storage: str,
    image: str,
    namespace: str = "kfp-rai",
    approval_event: str | None = None,
) -> dict[str, Any]:
    """The InferenceService for one registry version (a plain dict, as the API server takes it).

    ``approval_event`` (the signed event that made the version production, base64) reaches the
    server as ``KFP_RAI_APPROVAL_EVENT``: a server that cannot read the registry checks with the
    public key that a person promoted exactly this model (`kfp-rai serve` refuses it otherwise).
    Labels carry the model's name, version and sha256 (a label value holds at most 63
    characters: the digest's first 63 hex digits; the annotation holds all 64).
    """
    from kubernetes import client as k8s

    ks = kserve()
    name = isvc_name(model_name)
    labels = {
        "app.kubernetes.io/name": SERVING_ACCOUNT,
        "app.kubernetes.io/part-of": "kfp-rai",
        "app.kubernetes.io/component": "serving",
        "kfp-rai/model": name,
        "kfp-rai/model-version": version,
        "kfp-rai/model-sha256": model_sha256[:63],
    }
    annotations = {
        "serving.kserve.io/deploymentMode": DEPLOYMENT_MODE,
        "kfp-rai/model": model_name,
        "kfp-rai/model-version": version,
        "kfp-rai/model-sha256": model_sha256,
        "kfp-rai/storage-uri": storage,
        **({"kfp-rai/approval-event-sha256": _sha256_b64(approval_event)} if approval_event else {}),
        # Explained exceptions for the security scan (checkov, make verify): the tag is the package
        # version (compile with --image REGISTRY/NAME@sha256:... to pin a digest), and IfNotPresent
        # lets kind use the side-loaded image.
        "checkov.io/skip1": "CKV_K8S_43=tag equals the package version; digest is known only after push",
        "checkov.io/skip2": "CKV_K8S_15=the versioned tag is never rebuilt; kind side-loads the image",
    }
    env = [
        k8s.V1EnvVar(name="STORAGE_URI", value=storage),  # KServe's initializer: storageUri -> /mnt/models
        *(k8s.V1EnvVar(name=var, value=f"{path}/{file}") for _, path, var, file in SECRETS.values()),
        # the public half of the decision key, beside the model's: the approval event is checked with it
        k8s.V1EnvVar(name=DECISION_VERIFY_KEY_FILE_ENV, value=f"{SECRETS['verify-key'][1]}/{DECISION_VERIFY_FILE}"),
        *([k8s.V1EnvVar(name=APPROVAL_EVENT_ENV, value=approval_event)] if approval_event else []),
    ]
    mounts = [
        *(k8s.V1VolumeMount(name=v, mount_path=path, read_only=True) for v, (_, path, _, _) in SECRETS.items()),
        *(k8s.V1VolumeMount(name=v, mount_path=path) for v, (_, path, _) in CLAIMS.items()),
        k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),  # nosec B108 - the pod's own emptyDir
    ]
    probe = {"port": PORT, "scheme": "HTTP"}
    container = k8s.V1Container(
        name="kserve-container",  # the name KServe's storage initializer and probes look for
        image=image,
        image_pull_policy="IfNotPresent",
        command=["kfp-rai", "serve"],
        # 0.0.0.0: the kubelet and the Service reach the pod on its own IP. Each start begins a new
        # audit log ({start}) on the persistent audit volume, so a restart never overwrites one and
        # every earlier log still verifies against its checkpoints on the other volume.
        args=[
            "--model-uri",
            MODEL_MOUNT,
            "--host",
            "0.0.0.0",  # noqa: S104  # nosec B104 - inside the pod; the NetworkPolicy is the door
            "--port",
            str(PORT),
            "--state-dir",
            CHECKPOINTS,  # the kill switch, and the index of audit logs (checkpoints/audit-logs.json)
            "--audit-log",
            f"{STATE}/audit/audit-{{start}}.jsonl",
            "--audit-checkpoints",
            f"{CHECKPOINTS}/checkpoints/audit-{{start}}.jsonl.checkpoints",
            "--new-audit-log",
            # what it served, per hour, without raw values: the refresh pipeline's current data
            "--traffic-dir",
            f"{STATE}/traffic",
        ],
        env=env,
        ports=[k8s.V1ContainerPort(name="http1", container_port=PORT, protocol="TCP")],
        readiness_probe=k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path="/v2/health/ready", **probe), initial_delay_seconds=5, period_seconds=10
        ),
        liveness_probe=k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path="/v2/health/live", **probe), initial_delay_seconds=10, period_seconds=15
        ),
        resources=k8s.V1ResourceRequirements(
            requests={"cpu": "250m", "memory": "512Mi"}, limits={"cpu": "1", "memory": "1Gi"}
        ),
        security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            privileged=False,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        volume_mounts=mounts,
    )
    volumes = [
        *(
            k8s.V1Volume(
                name=v,
                secret=k8s.V1SecretVolumeSource(secret_name=secret, default_mode=0o444 if v == "verify-key" else 0o400),
            )
            for v, (secret, _, _, _) in SECRETS.items()
        ),
        *(
            k8s.V1Volume(
                name=v, persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=name + suffix)
            )
            for v, (suffix, _, _) in CLAIMS.items()
        ),
        k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="256Mi")),
    ]
    predictor = ks.V1beta1PredictorSpec(
        # One replica: the on-disk kill switch and the audit chain are per pod (the cluster stop is
        # KServe's annotation, which binds every replica).
        min_replicas=1,
        max_replicas=1,
        labels=labels,
        service_account_name=SERVING_ACCOUNT,  # its only permission: reading the model store
        automount_service_account_token=False,
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=10001,
            run_as_group=10001,
            fs_group=10001,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        containers=[container],
        volumes=volumes,
    )
    isvc = ks.V1beta1InferenceService(
        api_version=ks.constants.KSERVE_V1BETA1,
        kind=ks.constants.KSERVE_KIND_INFERENCESERVICE,
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, labels=labels, annotations=annotations),
        spec=ks.V1beta1InferenceServiceSpec(predictor=predictor),
    )
    rendered: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(isvc)
    return rendered


def render_audit_claims(model_name: str, namespace: str = "kfp-rai") -> list[dict[str, Any]]:
    """The PersistentVolumeClaims the InferenceService of ``model_name`` mounts (:data:`CLAIMS`),
    created before it (ReadWriteOnce, the cluster's default storage class). Applying them again is a
    no-op: they outlive every version, and deleting the InferenceService leaves them (and the audit
    trail) in place."""
    from kubernetes import client as k8s

    name = isvc_name(model_name)
    labels = {
        "app.kubernetes.io/name": SERVING_ACCOUNT,
        "app.kubernetes.io/part-of": "kfp-rai",
        "app.kubernetes.io/component": "audit",
        "kfp-rai/model": name,
    }
    claims = [
        k8s.V1PersistentVolumeClaim(
            api_version="v1",
            kind="PersistentVolumeClaim",
            metadata=k8s.V1ObjectMeta(name=name + suffix, namespace=namespace, labels=labels),
            spec=k8s.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=k8s.V1VolumeResourceRequirements(requests={"storage": size}),
            ),
        )
        for suffix, _, size in CLAIMS.values()
    ]
    api = k8s.ApiClient()
    return [api.sanitize_for_serialization(c) for c in claims]


def inference_service(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The InferenceService among the objects the deploy step renders (the claims come first)."""
    return next(o for o in objects if o["kind"] == "InferenceService")


def _sha256_b64(text: str) -> str:
    import base64
    import hashlib

    return hashlib.sha256(base64.b64decode(text)).hexdigest()


def manifest_yaml(objects: list[dict[str, Any]]) -> str:
    """Evidence: the objects as applied (server-side apply, field manager kfp-rai): the audit
    volumes' claims, then the InferenceService."""
    isvc = inference_service(objects)
    name, namespace = isvc["metadata"]["name"], isvc["metadata"]["namespace"]
    header = (
        "# The InferenceService the deploy step applies (server-side apply, field manager kfp-rai), after the\n"
        "# claims of the persistent volumes its audit trail lives on (they outlive every version).\n"
        f"# Roll back to this version: kubectl apply --server-side --field-manager kfp-rai -f THIS_FILE\n"
        f"# Stop serving:  kubectl -n {namespace} annotate inferenceservice/{name} {STOP_ANNOTATION}=true --overwrite\n"
    )
    return header + yaml.safe_dump_all(objects, sort_keys=False)


def _closed(schema: Any) -> Any:
    """The CRD's structural schema made strict the way the API server is: a field the schema does
    not declare is pruned there (silently dropped), so here it is an error."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def validate_against_crd(obj: dict[str, Any], crd_path: str | os.PathLike[str]) -> list[str]:
    """Problems of ``obj`` against the served version's ``openAPIV3Schema`` in a KServe CRD file
    (YAML, optionally gzipped), one line each; empty when valid."""
    import gzip

    import jsonschema

    raw = Path(crd_path).read_bytes()
    crd = yaml.safe_load(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    version = obj["apiVersion"].split("/", 1)[1]
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = _closed(served["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(obj)
    )


def check_against_sdk_types(obj: Any, type_name: str = "V1beta1InferenceService", where: str = "") -> list[str]:
    """Problems of ``obj`` against the kserve SDK's typed models (and the kubernetes client's,
    which they nest): every key must be a field of its type, recursively; empty when it fits."""
    import kubernetes.client.models as k8s_models

    ks = kserve()
    if type_name.startswith("list["):
        if not isinstance(obj, list):
            return [f"{where}: expected a list"]
        inner = type_name[5:-1]
        return [p for i, item in enumerate(obj) for p in check_against_sdk_types(item, inner, f"{where}[{i}]")]
    if type_name.startswith("dict("):
        if not isinstance(obj, dict):
            return [f"{where}: expected a mapping"]
        inner = type_name[5:-1].split(", ", 1)[1]
        return [p for k, v in obj.items() for p in check_against_sdk_types(v, inner, f"{where}.{k}")]
    cls = getattr(ks.models, type_name, None) or getattr(k8s_models, type_name, None)
    if cls is None:  # str, int, bool, object: a leaf
        return []
    if not isinstance(obj, dict):
        return [f"{where or '(root)'}: expected {type_name}"]
    by_json = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    problems = []
    for key, value in obj.items():
        if key not in by_json:
            problems.append(f"{where}.{key}: not a field of {type_name}".lstrip("."))
            continue
        problems += check_against_sdk_types(value, cls.openapi_types[by_json[key]], f"{where}.{key}".lstrip("."))
    return problems
