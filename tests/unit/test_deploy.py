"""Deployment objects for a registered model, rendered and checked offline; nothing applied here."""

import base64
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from kfp_rai._artifacts import save_model_dir
from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.production._deploy import MAX_CONFIGMAP_BYTES, deploy_model, render_serving
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
    packaged = REPO / "components" / "data" / "k8s" / "serving.yaml"
    assert packaged.read_text() == (REPO / "manifests" / "base" / "serving.yaml").read_text()


def test_local_deploy_renders_and_skips_with_the_reason(model_dir, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    report, objects = deploy_model(model_dir, model_name="adult-income", version="3", image="reg/kfp-rai:1")
    assert not report.deployed and report.reason.startswith("skipped: not running in a Kubernetes cluster")
    configmap, deployment, service = objects
    assert [o["kind"] for o in objects] == ["ConfigMap", "Deployment", "Service"]
    assert configmap["metadata"]["name"] == "kfp-rai-model-adult-income-3" and configmap["immutable"] is True
    assert base64.b64decode(configmap["binaryData"]["model.skops"]) == (model_dir / "model.skops").read_bytes()
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["kfp-rai/model-version"] == "3"
    assert pod["metadata"]["annotations"]["kfp-rai/model-sha256"] == report.model_sha256
    container = pod["spec"]["containers"][0]
    assert container["image"] == "reg/kfp-rai:1"
    assert {"name": "MODEL_URI", "value": "/models/adult-income/3"} in container["env"]
    assert {"name": "models", "configMap": {"name": "kfp-rai-model-adult-income-3"}} in pod["spec"]["volumes"]
    assert service["metadata"]["name"] == "kfp-rai-serving"
    base = next(yaml.safe_load_all((REPO / "manifests/base/serving.yaml").read_text()))
    assert pod["spec"]["securityContext"] == base["spec"]["template"]["spec"]["securityContext"]
    assert "DEPLOYED" in report.to_markdown() and "rollout undo" in report.to_markdown()


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
