"""The cluster path, checked offline: image, kind config, manifests and compiled settings agree."""

import re
from pathlib import Path

import yaml

from kfp_rai._image import DEFAULT_IMAGE, IMAGE
from kfp_rai._version import __version__
from kfp_rai.cli import main

REPO = Path(__file__).resolve().parents[2]


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_dockerfile_and_image_carry_the_package_version():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"ARG VERSION={__version__}\n" in dockerfile
    # The default base is exact, not latest; both stages build FROM it (or from BASE_IMAGE=REF).
    assert re.search(r"^ARG BASE_IMAGE=python:3\.\d+\.\d+-slim-\w+$", dockerfile, re.M)
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    base_default = re.search(r"^BASE_IMAGE \?= (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert base_default and f"ARG BASE_IMAGE={base_default[1]}\n" in dockerfile  # make image passes the same
    assert "USER 10001:10001" in dockerfile and "kfp-rai==${VERSION}" in dockerfile
    assert DEFAULT_IMAGE.endswith(f":{__version__}") and IMAGE == DEFAULT_IMAGE
    base = yaml.safe_load((REPO / "manifests/base/kustomization.yaml").read_text())
    assert base["images"] == [{"name": DEFAULT_IMAGE.rsplit(":", 1)[0], "newTag": __version__}]


def test_kind_node_is_pinned_and_ports_match_the_overlay():
    kind = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    node = kind["nodes"][0]
    assert re.fullmatch(r"kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", node["image"])
    mapped = {m["containerPort"] for m in node["extraPortMappings"]}
    overlay = REPO / "manifests/overlays/kind"
    services = [d for f in ("kfp-ui-nodeport.yaml", "serving-nodeport.yaml") for d in _docs(overlay / f)]
    node_ports = {p["nodePort"] for s in services for p in s["spec"]["ports"]}
    assert node_ports == mapped == {30080, 30880}
    # the serving NodePort reaches the predictor pods the deploy step labels
    from kfp_rai.production._inference_service import SERVING_ACCOUNT

    assert services[1]["spec"]["selector"] == {"app.kubernetes.io/name": SERVING_ACCOUNT}


def test_kind_installs_a_kfp_backend_as_new_as_the_sdk():
    """The compiled YAML is written by the SDK in constraints.txt; an older backend rejects fields
    it does not know (kfp 2.14's driver fails on secretAsEnv.optional, kubeflow/pipelines#12495)."""
    script = (REPO / "scripts/kind-up.sh").read_text()
    backend = re.search(r"KFP_VERSION=\$\{KFP_VERSION:-(\d+)\.(\d+)\.(\d+)\}", script).groups()
    pins = dict(re.findall(r"^(kfp|kfp-kubernetes)==(\S+)$", (REPO / "constraints.txt").read_text(), re.M))
    for package in ("kfp", "kfp-kubernetes"):
        sdk = tuple(int(x) for x in pins[package].split(".")[:2])
        assert tuple(int(x) for x in backend[:2]) >= sdk, f"KFP backend {backend} is older than {package} {sdk}"
    assert f"Kubeflow Pipelines {'.'.join(backend)} from" in (REPO / "README.md").read_text()


def test_namespace_is_restricted_and_nothing_but_the_serving_port_is_open():
    namespace = _docs(REPO / "manifests/base/namespace.yaml")[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    policies = {d["metadata"]["name"]: d for d in _docs(REPO / "manifests/base/networkpolicy.yaml")}
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    allow = policies["allow-serving-http"]["spec"]
    assert allow["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "kfp-rai-serving"}
    assert allow["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]


def test_deployer_role_is_least_privilege_on_inference_services():
    role = next(d for d in _docs(REPO / "manifests/base/rbac.yaml") if d["kind"] == "Role")
    assert role["rules"] == [
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": ["get", "create", "patch"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "create", "patch"]},
    ]  # no delete, list, watch, status, Secrets, Pods or Deployments
    serving = next(d for d in _docs(REPO / "manifests/base/rbac.yaml") if d["metadata"]["name"] == "kfp-rai-serving")
    assert serving["kind"] == "ServiceAccount" and serving["automountServiceAccountToken"] is False


def test_kind_installs_kserve_in_standard_mode_pinned_to_the_crd_it_is_checked_against():
    script = (REPO / "scripts/kind-up.sh").read_text()
    version = re.search(r"KSERVE_VERSION=\$\{KSERVE_VERSION:-(v\d+\.\d+\.\d+)\}", script).group(1)
    assert "releases/download/$KSERVE_VERSION/kserve.yaml" in script and "defaultDeploymentMode" in script
    assert re.search(r"CERT_MANAGER_VERSION:-v\d+\.\d+\.\d+", script)
    source = (REPO / "manifests/kserve/SOURCE.md").read_text()
    assert f"tag {version}" in source


def test_compile_with_a_private_image(tmp_path, capsys):
    assert main(["compile", "--output", str(tmp_path), "--image", "registry.local:5000/team/kfp-rai:1.2"]) == 0
    spec = next(yaml.safe_load_all((tmp_path / "lifecycle.yaml").read_text()))
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {"registry.local:5000/team/kfp-rai:1.2"}
    assert main(["compile", "--output", str(tmp_path), "--image", "bad image"]) == 2


def test_compiled_tasks_have_resources_retries_and_time_dependent_caching_off():
    docs = _docs(REPO / "pipelines/compiled/lifecycle.yaml")
    spec = docs[0]
    executors = spec["deploymentSpec"]["executors"]
    assert all("resources" in e["container"] for e in executors.values())

    def tasks(dag):  # every task, the refresh sub-pipeline's too, by the component it runs
        for task in dag["tasks"].values():
            ref = task["componentRef"]["name"]
            yield ref, task
            if "dag" in spec["components"][ref]:
                yield from tasks(spec["components"][ref]["dag"])

    all_tasks = dict(tasks(spec["root"]["dag"]))
    for name in ("comp-load-dataset", "comp-load-dataset-2"):
        assert all_tasks[name]["retryPolicy"]["maxRetryCount"] == 2
        assert not all_tasks[name].get("cachingOptions", {}).get("enableCache", False)
    time_dependent = ("check-registry", "resolve-champion", "monitor-model", "register-model", "register-model-2")
    for name in time_dependent:
        assert not all_tasks[f"comp-{name}"].get("cachingOptions", {}).get("enableCache", False), name
    assert all_tasks["comp-train-model"]["cachingOptions"]["enableCache"] is True
    # The pseudonymization key reaches every task that loads data from its Secret (kfp-kubernetes); the
    # object store's credentials reach every task (the registry and files given as URIs live there).
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("exec-load-dataset", "exec-load-dataset-2", "exec-combine-datasets"):
        secrets = {s["secretName"]: s for s in platform[name]["secretAsEnv"]}
        secret = secrets["kfp-rai-pseudonymization"]
        assert secret["optional"] is True
        assert secret["keyToEnv"] == [{"envVar": "KFP_RAI_HMAC_KEY", "secretKey": "hmac-key"}]
    for name, executor in platform.items():
        assert "mlpipeline-minio-artifact" in {s["secretName"] for s in executor.get("secretAsEnv", [])}, name
    # No task of a pipeline ever holds the decision key: only its public half.
    for executor in platform.values():
        for secret in executor.get("secretAsEnv", []):
            assert "KFP_RAI_DECISION_KEY" not in {k["envVar"] for k in secret["keyToEnv"]}


def test_the_kind_ui_and_a_local_server_never_share_a_port():
    import argparse

    from kfp_rai.cli import build_parser

    serve = next(a.choices["serve"] for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    default = next(a.default for a in serve._actions if "--port" in a.option_strings)
    kind = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    hosts = {m["hostPort"] for m in kind["nodes"][0]["extraPortMappings"]}
    assert default == 8080 and default not in hosts and 8888 in hosts
    assert "http://localhost:8888" in (REPO / "scripts/kind-up.sh").read_text()
