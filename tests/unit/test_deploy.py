"""Deployment objects for a registered model, rendered and checked offline; nothing applied here."""

import base64
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from kfp_rai.core.model_dir import save_model_dir
from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.production import deploy_model, manifest_yaml
from kfp_rai.production._serving_manifest import (
    MAX_CONFIGMAP_BYTES,
    _merge,
    render_serving,
    serving_after_deploy,
)
from kfp_rai.training import train_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, adult):
    model, summary = train_model(
        adult.sample(2000, random_state=0), target="income", positive_label=">50K", sensitive_features=["sex", "race"]
    )
    path = tmp_path_factory.mktemp("m") / "model"
    save_model_dir(model, path, asdict(summary))
    return path


def test_packaged_template_is_the_base_manifest():
    packaged = REPO / "src" / "kfp_rai" / "data" / "k8s" / "serving.yaml"
    assert packaged.read_text() == (REPO / "manifests" / "base" / "serving.yaml").read_text()


def test_local_deploy_renders_and_skips_with_the_reason(model_dir, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    report, objects = deploy_model(model_dir, model_name="adult-income", version="3", image="reg/kfp-rai:1")
    assert not report.deployed and report.reason.startswith("skipped: not running in a Kubernetes cluster")
    assert [o["kind"] for o in objects] == ["ConfigMap", "Deployment"]  # never the Service
    configmap, patch = objects
    cm_name = f"kfp-rai-model-adult-income-3-{report.model_sha256[:12]}"
    assert configmap["metadata"]["name"] == cm_name and configmap["immutable"] is True
    assert base64.b64decode(configmap["binaryData"]["model.skops"]) == (model_dir / "model.skops").read_bytes()
    # The patch holds only the fields the deploy step owns; security settings stay the operator's.
    assert patch["spec"]["replicas"] == 1 and set(patch["spec"]) == {"replicas", "template"}
    assert patch["spec"]["template"]["spec"]["containers"] == [{"name": "serving", "image": "reg/kfp-rai:1"}]
    assert patch["spec"]["template"]["spec"]["volumes"] == [{"name": "models", "configMap": {"name": cm_name}}]

    after = serving_after_deploy(objects)
    base = next(yaml.safe_load_all((REPO / "manifests/base/serving.yaml").read_text()))
    pod = after["spec"]["template"]
    assert pod["metadata"]["annotations"]["kfp-rai/model-version"] == "3"
    assert pod["metadata"]["annotations"]["kfp-rai/model-sha256"] == report.model_sha256
    assert pod["spec"]["securityContext"] == base["spec"]["template"]["spec"]["securityContext"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "reg/kfp-rai:1" and container["livenessProbe"]
    assert container["args"] == base["spec"]["template"]["spec"]["containers"][0]["args"]  # the operator's
    # The one models volume now mounts the ConfigMap: no second volume source is left behind.
    models = [v for v in pod["spec"]["volumes"] if v["name"] == "models"]
    assert models == [{"name": "models", "configMap": {"name": cm_name, "optional": True}}]
    assert {"name": "MODEL_URI", "value": "/models"} in container["env"] and "--host" in container["args"]
    assert "DEPLOYED" in report.to_markdown() and "rollout undo" in report.to_markdown()
    evidence = manifest_yaml(objects)
    assert "base64 characters>" in evidence and "readOnlyRootFilesystem: true" in evidence


def test_a_new_model_gets_a_new_configmap_even_under_the_same_version():
    kwargs = {"model_name": "m", "version": "1", "model_files": {"model.skops": b"x"}, "image": "i"}
    first = render_serving(model_sha256="a" * 64, **kwargs)[0]["metadata"]["name"]
    second = render_serving(model_sha256="b" * 64, **kwargs)[0]["metadata"]["name"]
    assert first != second  # immutable ConfigMaps are never asked to change


def test_merge_follows_server_side_apply_for_named_lists():
    base = {"a": 1, "items": [{"name": "x", "v": 1, "keep": True}, {"name": "y", "v": 2}], "m": {"k": 1}}
    patch = {"items": [{"name": "x", "v": 9}, {"name": "z", "v": 3}], "m": {"j": 2}}
    assert _merge(base, patch) == {
        "a": 1,
        "items": [{"name": "x", "v": 9, "keep": True}, {"name": "y", "v": 2}, {"name": "z", "v": 3}],
        "m": {"k": 1, "j": 2},
    }


def test_tampered_model_is_never_shipped(model_dir, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / "model.skops").write_bytes(b"not the model")
    with pytest.raises(IntegrityError):
        deploy_model(copy, model_name="m", version="1", image="i")


def test_models_too_large_for_a_configmap_are_refused_with_advice():
    with pytest.raises(InvalidParameterError, match="object store"):
        render_serving(
            model_name="m",
            version="1",
            model_sha256="0" * 64,
            model_files={"model.skops": b"x" * (MAX_CONFIGMAP_BYTES + 1)},
            image="i",
        )


class _FakeApiServer:
    """A stand-in for the Kubernetes API server that records requests (no cluster runs here):
    it checks what the deploy step sends, not what a real server would do with it."""

    def __init__(self, deployment_exists: bool, patch_status: int = 200):
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

            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.requests.append(("GET", self.path, "", {}))
                outer.tokens.append(self.headers.get("Authorization"))
                if deployment_exists:
                    self._reply(200, {"kind": "Deployment", "metadata": {"name": "kfp-rai-serving"}})
                else:
                    self._reply(404, {"kind": "Status", "reason": "NotFound", "code": 404})

            def do_PATCH(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(("PATCH", self.path, self.headers["Content-Type"], body))
                outer.tokens.append(self.headers.get("Authorization"))
                if patch_status != 200:
                    message = 'Deployment.apps "kfp-rai-serving" is invalid:\nspec.template: bad'
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


@pytest.mark.parametrize("exists", [True, False])
def test_apply_sends_server_side_apply_patches_only_to_an_installed_serving_app(model_dir, exists, monkeypatch):
    from kfp_rai.errors import DeploymentError
    from kfp_rai.production._kube import apply_objects

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # render only; the fake gets the apply
    _, objects = deploy_model(model_dir, model_name="adult-income", version="1", image="reg/kfp-rai:1")
    fake = _FakeApiServer(deployment_exists=exists)
    api = fake.client()
    try:
        if not exists:
            with pytest.raises(DeploymentError, match="does not exist: install the serving app first"):
                apply_objects(objects, api=api)
            assert [r[0] for r in fake.requests] == ["GET"]  # nothing applied
            return
        apply_objects(objects, api=api)
    finally:
        api.close()
        fake.server.shutdown()
        fake.server.server_close()
    get, cm, deployment = fake.requests
    assert get[:2] == ("GET", "/apis/apps/v1/namespaces/kfp-rai/deployments/kfp-rai-serving")
    name = objects[0]["metadata"]["name"]
    query = "?fieldManager=kfp-rai&force=true"
    assert cm[1] == f"/api/v1/namespaces/kfp-rai/configmaps/{name}{query}"
    assert deployment[1] == f"/apis/apps/v1/namespaces/kfp-rai/deployments/kfp-rai-serving{query}"
    assert cm[2] == deployment[2] == "application/apply-patch+yaml"
    assert cm[3] == objects[0] and deployment[3] == objects[1]
    assert fake.tokens == ["Bearer sa-token"] * 3  # every request carries the service account's token


def test_a_refused_apply_is_one_line_with_the_api_servers_reason(model_dir, monkeypatch):
    from kfp_rai.errors import DeploymentError
    from kfp_rai.production._kube import apply_objects

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    _, objects = deploy_model(model_dir, model_name="adult-income", version="1", image="reg/kfp-rai:1")
    for status, hint in ((422, "is invalid: spec.template: bad"), (403, "service account kfp-rai-deployer")):
        fake = _FakeApiServer(deployment_exists=True, patch_status=status)
        api = fake.client()
        try:
            with pytest.raises(DeploymentError) as info:
                apply_objects(objects, api=api)
        finally:
            api.close()
            fake.server.shutdown()
            fake.server.server_close()
        message = str(info.value)
        assert "\n" not in message and f"HTTP {status}" in message and hint in message
        assert message.startswith("server-side apply of ConfigMap/kfp-rai-model-adult-income-1-")
