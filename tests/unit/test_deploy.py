"""The InferenceService for a registered model: rendered with the kserve SDK's typed objects,
checked against KServe's CRD schema, applied with server-side apply (to a stand-in API server: no
cluster runs here), and run exactly as KServe would start its container."""

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from kfp_rai.errors import DeploymentError, IntegrityError, InvalidParameterError
from kfp_rai.production import (
    ModelRegistry,
    deploy_model,
    inference_service,
    manifest_yaml,
    servable_version,
    storage_uri,
)
from kfp_rai.production._inference_service import SECRETS, isvc_name

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "manifests" / "kserve" / "serving.kserve.io_inferenceservices.yaml.gz"


@pytest.fixture(scope="module")
def model_dir(versions):
    return versions.production


def _signed_approval(model_dir):
    return servable_version(model_uri=str(model_dir)).signed_approval


def _render(model_dir, **kwargs):
    args = {
        "model_name": "adult-income",
        "version": "3",
        "storage_uri": "s3://models/adult-income/3",
        "image": "reg/kfp-rai:1",
    }
    return deploy_model(model_dir, **{**args, **kwargs})


def test_local_deploy_renders_an_inference_service_and_skips_with_the_reason(model_dir, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    report, objects = _render(model_dir)
    assert not report.deployed and report.reason.startswith("skipped: not running in a Kubernetes cluster")
    *claims, isvc = objects  # the audit volumes' claims first: the pod mounts them
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"
    assert [(c["kind"], c["metadata"]["name"]) for c in claims] == [
        ("PersistentVolumeClaim", "adult-income-audit-log"),
        ("PersistentVolumeClaim", "adult-income-audit-state"),
    ]
    assert all(c["spec"]["accessModes"] == ["ReadWriteOnce"] for c in claims)
    assert report.objects == tuple(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    assert isvc["metadata"]["name"] == "adult-income" and isvc["metadata"]["namespace"] == "kfp-rai"
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Standard"  # raw Deployment, no Knative
    assert annotations["kfp-rai/model-version"] == "3" and annotations["kfp-rai/model-sha256"] == report.model_sha256
    predictor = isvc["spec"]["predictor"]
    assert predictor["minReplicas"] == predictor["maxReplicas"] == 1
    assert predictor["serviceAccountName"] == "kfp-rai-serving" and predictor["automountServiceAccountToken"] is False
    assert predictor["securityContext"]["runAsNonRoot"] and predictor["securityContext"]["seccompProfile"]
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container" and container["image"] == "reg/kfp-rai:1"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["STORAGE_URI"] == "s3://models/adult-income/3"  # KServe's initializer -> /mnt/models
    assert not any("valueFrom" in e for e in container["env"])  # keys and tokens are mounted files
    assert {env[var] for _, _, var, _ in SECRETS.values()} == {f"{p}/{f}" for _, p, _, f in SECRETS.values()}
    secrets = {v["secret"]["secretName"]: v["secret"]["defaultMode"] for v in predictor["volumes"] if "secret" in v}
    assert secrets == {
        "kfp-rai-verify-key": 0o444,
        "kfp-rai-audit": 0o400,
        "kfp-rai-pseudonymization": 0o400,
        "kfp-rai-serving-token": 0o400,
    }
    assert "kfp-rai-signing" not in json.dumps(isvc)  # serving verifies, it never holds the signing key
    sc = container["securityContext"]
    assert (
        sc["readOnlyRootFilesystem"]
        and sc["allowPrivilegeEscalation"] is False
        and sc["capabilities"]["drop"] == ["ALL"]
    )
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {"requests", "limits"} <= set(container["resources"])
    assert container["args"][:2] == ["--model-uri", "/mnt/models"] and "--insecure-no-auth" not in container["args"]
    # The audit trail outlives the pod: logs on one persistent volume, checkpoints and the log index
    # (the state directory) on another; no emptyDir holds anything that must be kept.
    claimed = {
        v["name"]: v["persistentVolumeClaim"]["claimName"] for v in predictor["volumes"] if "persistentVolumeClaim" in v
    }
    assert claimed == {"audit-log": "adult-income-audit-log", "audit-state": "adult-income-audit-state"}
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    given = container["args"]
    arg = {
        a: given[i + 1] for i, a in enumerate(given[:-1]) if a.startswith("--") and not given[i + 1].startswith("--")
    }
    assert arg["--audit-log"].startswith(mounted["audit-log"] + "/")
    assert arg["--traffic-dir"].startswith(mounted["audit-log"] + "/")
    assert arg["--audit-checkpoints"].startswith(mounted["audit-state"] + "/")
    assert arg["--state-dir"] == mounted["audit-state"]
    assert [v["name"] for v in predictor["volumes"] if "emptyDir" in v] == ["tmp"]
    markdown = report.to_markdown()
    assert "NOT DEPLOYED" in markdown and "serving.kserve.io/stop=true" in markdown
    evidence = manifest_yaml(objects)
    assert list(yaml.safe_load_all(evidence)) == objects and "kubectl apply --server-side" in evidence


def test_the_rendered_object_fits_the_kserve_sdk_types(model_dir, monkeypatch):
    from kfp_rai.production._inference_service import check_against_sdk_types

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    isvc = inference_service(_render(model_dir)[1])
    assert check_against_sdk_types(isvc) == []
    broken = json.loads(json.dumps(isvc))
    broken["spec"]["predictor"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/"
    broken["spec"]["predictor"]["minReplica"] = 1
    assert check_against_sdk_types(broken) == [
        "spec.predictor.containers[0].readinessProbe.httpGet.pathh: not a field of V1HTTPGetAction",
        "spec.predictor.minReplica: not a field of V1beta1PredictorSpec",
    ]


def test_the_rendered_object_is_valid_against_the_kserve_crd_schema(model_dir, monkeypatch):
    from kfp_rai.production._inference_service import validate_against_crd

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    isvc = inference_service(_render(model_dir)[1])
    assert validate_against_crd(isvc, CRD) == []
    broken = json.loads(json.dumps(isvc))
    broken["spec"]["predictor"]["minReplicas"] = "one"
    broken["spec"]["predictor"]["containers"][0]["ports"][0]["containerPort"] = "http"
    problems = validate_against_crd(broken, CRD)
    assert any("minReplicas" in p for p in problems) and any("containerPort" in p for p in problems)


@pytest.mark.parametrize(
    ("version_uri", "path", "artifact", "expected"),
    [
        ("s3://bucket/reg/m/1", None, None, "s3://bucket/reg/m/1"),
        ("pvc://models/reg/m/1", None, None, "pvc://models/reg/m/1"),
        # the default in Kubeflow: the registry inside the task's output artifact, on KFP's MinIO
        (
            "/minio/mlpipeline/v2/a/registered/m/1",
            "/minio/mlpipeline/v2/a/registered",
            "minio://mlpipeline/v2/a/registered",
            "s3://mlpipeline/v2/a/registered/m/1",
        ),
        ("/home/me/registry/m/1", "/tmp/out/registered", "minio://mlpipeline/x", None),  # a local registry elsewhere
        ("/home/me/registry/m/1", None, None, None),
    ],
)
def test_the_storage_uri_is_one_kserve_can_fetch_or_none(version_uri, path, artifact, expected):
    assert storage_uri(version_uri, path, artifact) == expected


def test_a_registry_no_cluster_can_reach_is_refused_in_a_cluster(model_dir, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    with pytest.raises(DeploymentError, match="local path no KServe storage initializer can fetch"):
        _render(model_dir, storage_uri=None)


@pytest.mark.parametrize("name", ["Adult_Income", "9lives", "x" * 46, "a.b"])
def test_model_names_become_valid_inference_service_names_or_are_refused(name):
    if name in ("Adult_Income", "a.b"):
        assert isvc_name(name) in ("adult-income", "a-b")
    else:
        with pytest.raises(InvalidParameterError, match="makes no InferenceService name"):
            isvc_name(name)


def test_tampered_model_is_never_shipped(model_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / "model.skops").write_bytes(b"not the model")
    with pytest.raises(IntegrityError):
        _render(copy)


def test_the_container_serves_the_version_as_kserve_starts_it(model_dir, tmp_path, monkeypatch):
    """What KServe does, done here: the storage initializer copies storageUri's files to
    /mnt/models, Secrets become files, the container's command runs with its env; then a
    prediction with the serving token, as a caller inside the cluster would send it."""
    from kfp_rai.core.signing import ensure_local_keys

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    isvc = inference_service(_render(model_dir, version="1", approval_event=_signed_approval(model_dir))[1])
    container = isvc["spec"]["predictor"]["containers"][0]
    root = tmp_path / "pod"
    mounts = {"/mnt/models": root / "mnt-models", "/var/lib/kfp-rai": root / "audit-log",
              "/var/lib/kfp-rai-state": root / "audit-state"}  # fmt: skip
    shutil.copytree(model_dir, mounts["/mnt/models"])  # the storage initializer's copy
    token = "token-from-the-secret-0123456789"
    ensure_local_keys()
    contents = {
        "kfp-rai-verify-key": Path(os.environ["KFP_RAI_CONFIG_DIR"], "keys", "verify-key.pem").read_bytes(),
        "kfp-rai-audit": b"a" * 64,
        "kfp-rai-pseudonymization": b"b" * 64,
        "kfp-rai-serving-token": token.encode(),
    }
    for volume, (secret, path, _, file) in SECRETS.items():
        mounts[path] = root / volume
        mounts[path].mkdir(parents=True)
        (mounts[path] / file).write_bytes(contents[secret])
        os.chmod(mounts[path] / file, 0o400)
    # The verification Secret holds the decision key's public half too (the approval event is checked with it).
    decision = mounts[SECRETS["verify-key"][1]] / "decision-verify-key.pem"
    decision.write_bytes(Path(os.environ["KFP_RAI_CONFIG_DIR"], "keys", "decision-verify-key.pem").read_bytes())
    os.chmod(decision, 0o400)

    def local(value):
        for inside, outside in sorted(mounts.items(), key=lambda m: -len(m[0])):
            value = value.replace(inside, str(outside))
        return value

    env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_RAI_")}
    env.update({e["name"]: local(e["value"]) for e in container["env"]})
    args = [local(a) for a in container["args"]]
    port = args[args.index("--port") + 1]
    args[args.index("--port") + 1] = "0"
    args[args.index("--host") + 1] = "127.0.0.1"  # loopback only, here
    kfp_rai = str(Path(sys.executable).with_name(container["command"][0]))
    proc = subprocess.Popen(
        [kfp_rai, *container["command"][1:], *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving adult-income version 1 (sha256 "), line or proc.stderr.read()
        assert port == "8080"
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        row = {
            "age": 40,
            "workclass": "Private",
            "fnlwgt": 100000,
            "education": "Bachelors",
            "education-num": 13,
            "marital-status": "Never-married",
            "occupation": "Sales",
            "relationship": "Not-in-family",
            "capital-gain": 0,
            "capital-loss": 0,
            "hours-per-week": 40,
            "native-country": "United-States",
        }
        request = urllib.request.Request(
            f"{url}/v1/models/adult-income:predict",
            data=json.dumps({"instances": [row]}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200 and len(json.loads(response.read())["predictions"]) == 1
        for probe in ("readinessProbe", "livenessProbe"):
            with urllib.request.urlopen(url + container[probe]["httpGet"]["path"], timeout=10) as response:
                assert response.status == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    logs = list((mounts["/var/lib/kfp-rai"] / "audit").glob("audit-*.jsonl"))
    assert len(logs) == 1
    records = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert [r["event"] for r in records] == ["audit_log_created", "start", "predict", "stop"]
    assert records[1]["approval"]["type"] == "promoted" and records[1]["approval"]["by"] == "reviewer"
    # The pod restarts on the same volumes: a new log begins, and every log verifies against its
    # checkpoints and the index on the state volume.
    again = subprocess.Popen([kfp_rai, *container["command"][1:], *args], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert again.stdout.readline().startswith("serving adult-income version 1")
    finally:
        again.terminate()
        again.communicate(timeout=30)
    logs = sorted((mounts["/var/lib/kfp-rai"] / "audit").glob("audit-*.jsonl"))
    assert len(logs) == 2
    state_dir = args[args.index("--state-dir") + 1]
    for log in logs:
        done = subprocess.run(
            [kfp_rai, "audit", "verify", str(log), "--state-dir", state_dir], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    # The same pod without the signed promotion, or with one of another version, serves nothing.
    for approval in (None, "not base64!", _forged_approval(model_dir)):
        env.pop("KFP_RAI_APPROVAL_EVENT", None)
        if approval is not None:
            env["KFP_RAI_APPROVAL_EVENT"] = approval
        done = subprocess.run([kfp_rai, *container["command"][1:], *args], env=env, capture_output=True, text=True)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert ("not approved" in done.stderr) if approval is None else ("KFP_RAI_APPROVAL_EVENT" in done.stderr)


def _forged_approval(model_dir):
    """A genuine signed event of this registry, but for another version of the model."""
    import base64

    from kfp_rai.production._events import decode_event

    event = decode_event(base64.b64decode(_signed_approval(model_dir)), "test")
    registry = ModelRegistry(str(Path(model_dir).parents[1]))
    other = registry.events("adult-income").draft(
        (), type="promoted", version="2", model_sha256=event.model_sha256, by="mallory", time=event.time
    )
    from kfp_rai.core.signing import DECISION_KEYS
    from kfp_rai.production._events import encode_event

    return base64.b64encode(encode_event(other, DECISION_KEYS)).decode()


class _FakeApiServer:
    """A stand-in for the Kubernetes API server that records requests (no cluster runs here):
    it checks what the deploy step sends, not what a real server would do with it."""

    def __init__(self, patch_status: int = 200):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, str, str, dict]] = []
        self.tokens: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PATCH(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(("PATCH", self.path, self.headers["Content-Type"], body))
                outer.tokens.append(self.headers.get("Authorization"))
                if patch_status != 200:
                    message = 'InferenceService.serving.kserve.io "adult-income" is invalid:\nspec.predictor: bad'
                    self._reply(patch_status, {"kind": "Status", "code": patch_status, "message": message})
                else:
                    self._reply(200, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def client(self):
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        configuration.api_key = {"authorization": "Bearer sa-token"}  # as load_incluster_config sets it
        return client.ApiClient(configuration)


def test_apply_creates_or_patches_the_inference_service_with_server_side_apply(model_dir, monkeypatch):
    from kfp_rai.production._kube import apply_objects

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # render only; the fake gets the apply
    _, objects = _render(model_dir)
    fake = _FakeApiServer()
    api = fake.client()
    try:
        apply_objects(objects, api=api)
    finally:
        api.close()
        fake.server.shutdown()
        fake.server.server_close()
    # One request per object, in order (the claims before the pod that mounts them): no read, no delete.
    assert [r[0] for r in fake.requests] == ["PATCH"] * 3 and [r[3] for r in fake.requests] == objects
    assert {r[2] for r in fake.requests} == {"application/apply-patch+yaml"}
    assert [r[1].split("?")[0] for r in fake.requests] == [
        "/api/v1/namespaces/kfp-rai/persistentvolumeclaims/adult-income-audit-log",
        "/api/v1/namespaces/kfp-rai/persistentvolumeclaims/adult-income-audit-state",
        "/apis/serving.kserve.io/v1beta1/namespaces/kfp-rai/inferenceservices/adult-income",
    ]
    assert {r[1].split("?")[1] for r in fake.requests} == {"fieldManager=kfp-rai&force=true"}
    assert fake.tokens == ["Bearer sa-token"] * 3  # the service account's token


def test_a_refused_apply_is_one_line_with_the_api_servers_reason(model_dir, monkeypatch):
    from kfp_rai.errors import DeploymentError
    from kfp_rai.production._kube import apply_objects

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    _, objects = _render(model_dir)
    for status, hint in (
        (422, "is invalid: spec.predictor: bad"),
        (403, "service account kfp-rai-deployer"),
        (404, "is KServe installed"),
    ):
        fake = _FakeApiServer(patch_status=status)
        api = fake.client()
        try:
            with pytest.raises(DeploymentError) as info:
                apply_objects([inference_service(objects)], api=api)
        finally:
            api.close()
            fake.server.shutdown()
            fake.server.server_close()
        message = str(info.value)
        assert "\n" not in message and f"HTTP {status}" in message and hint in message
        assert message.startswith("server-side apply of InferenceService/adult-income failed: ")


def test_deploy_manifest_prints_the_inference_service_of_any_version_to_roll_back_to(model_dir, tmp_path, capsys):
    from kfp_rai.cli import main

    args = ["deploy-manifest", "--model-uri", str(model_dir)]
    assert main(args) == 2
    assert "a local path a cluster cannot fetch: give the version's URI" in capsys.readouterr().err
    assert main([*args, "--storage-uri", "s3://models/adult-income/1", "--namespace", "ml"]) == 0
    *claims, isvc = yaml.safe_load_all(capsys.readouterr().out)
    assert [c["kind"] for c in claims] == ["PersistentVolumeClaim"] * 2  # the audit volumes, before the pod
    env = {e["name"]: e["value"] for e in isvc["spec"]["predictor"]["containers"][0]["env"]}
    assert env["KFP_RAI_APPROVAL_EVENT"] == _signed_approval(model_dir)  # the promotion, signed
    # The production alias resolves to the same version and the same object.
    registry = str(Path(model_dir).parents[1])
    assert (
        main(["deploy-manifest", "--registry", registry, "--model", "adult-income", "--storage-uri", "s3://m/1"]) == 0
    )
    by_alias = inference_service(list(yaml.safe_load_all(capsys.readouterr().out)))
    assert by_alias["metadata"]["labels"]["kfp-rai/model-version"] == "1"
    assert (
        by_alias["metadata"]["labels"]["kfp-rai/model-sha256"]
        == isvc["metadata"]["annotations"]["kfp-rai/model-sha256"][:63]
    )
    assert isvc["metadata"]["namespace"] == "ml" and isvc["metadata"]["annotations"]["kfp-rai/model-version"] == "1"
    assert {"name": "STORAGE_URI", "value": "s3://models/adult-income/1"} in isvc["spec"]["predictor"]["containers"][0][
        "env"
    ]
    copy = tmp_path / "v"
    shutil.copytree(model_dir, copy)
    (copy / "metadata.json").write_text("{}")
    assert main(["deploy-manifest", "--model-uri", str(copy), "--storage-uri", "s3://m/1", "--allow-unapproved"]) == 2
    err = capsys.readouterr().err
    assert "signature" in err and len(err.strip().splitlines()) == 1


def test_promotion_with_deploy_in_a_cluster_applies_what_production_names(model_dir, monkeypatch, tmp_path, capsys):
    """`kfp-rai models promote ... --deploy` inside a cluster: one server-side apply of the production
    version's InferenceService, carrying its signed promotion, recorded as a deployed event."""
    from kfp_rai.cli import main
    from kfp_rai.production import _deploy
    from kfp_rai.production._kube import apply_objects

    registry = Path(model_dir).parents[1]
    copy = tmp_path / "registry"
    shutil.copytree(registry, copy)  # the module's registry stays as the other tests expect it
    fake = _FakeApiServer()
    api = fake.client()
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setattr(_deploy, "apply_objects", lambda objects: apply_objects(objects, api=api))
    try:
        args = ["--registry", str(copy), "--storage-uri", "s3://models/adult-income/1", "--deploy"]
        assert main(["models", "rollback", "adult-income", "--by", "ops", "--note", "x", *args]) == 2
        assert "no earlier production version" in capsys.readouterr().err
        assert main(["models", "promote", "adult-income", "1", "--by", "reviewer", *args]) == 2  # in production
        capsys.readouterr()
        state = ModelRegistry(str(copy)).state("adult-income")
        assert state.aliases["production"] == "1"
        from kfp_rai.production import deploy_production

        report = deploy_production(ModelRegistry(str(copy)), "adult-income", by="ops", storage="s3://m/adult-income/1")
    finally:
        api.close()
        fake.server.shutdown()
        fake.server.server_close()
    assert report.deployed and report.reason.startswith("applied PersistentVolumeClaim/adult-income-audit-log, ")
    assert "InferenceService/adult-income in namespace kfp-rai" in report.reason
    *_, (method, path, _, body) = fake.requests  # the claims first, then the InferenceService
    assert method == "PATCH" and path.startswith("/apis/serving.kserve.io/v1beta1/namespaces/kfp-rai/")
    env = {e["name"]: e["value"] for e in body["spec"]["predictor"]["containers"][0]["env"]}
    assert env["KFP_RAI_APPROVAL_EVENT"] == servable_version(registry=str(copy), name="adult-income").signed_approval
    last = ModelRegistry(str(copy)).events("adult-income").read()[-1]
    assert last.type == "deployed" and last.details["applied"] is True and last.by == "ops"
