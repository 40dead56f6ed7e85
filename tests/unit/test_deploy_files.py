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
    assert re.search(r"^FROM python:3\.\d+\.\d+-slim-\w+", dockerfile, re.M)  # exact, not latest
    assert "USER 10001:10001" in dockerfile and "kfp-rai==${VERSION}" in dockerfile
    assert DEFAULT_IMAGE.endswith(f":{__version__}") and IMAGE == DEFAULT_IMAGE
    base = yaml.safe_load((REPO / "manifests/base/kustomization.yaml").read_text())
    assert base["images"] == [{"name": DEFAULT_IMAGE.rsplit(":", 1)[0], "newTag": __version__}]


def test_kind_node_is_pinned_and_ports_match_the_overlay():
    kind = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    node = kind["nodes"][0]
    assert re.fullmatch(r"kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", node["image"])
    mapped = {m["containerPort"] for m in node["extraPortMappings"]}
    overlay = (REPO / "manifests/overlays/kind/kustomization.yaml").read_text()
    ui = _docs(REPO / "manifests/overlays/kind/kfp-ui-nodeport.yaml")[0]
    node_ports = {int(p) for p in re.findall(r"nodePort\s+value: (\d+)", overlay)} | {
        p["nodePort"] for p in ui["spec"]["ports"]
    }
    assert node_ports == mapped == {30080, 30880}


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


def test_namespace_is_restricted_and_serving_pod_is_locked_down():
    namespace = _docs(REPO / "manifests/base/namespace.yaml")[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deployment = next(d for d in _docs(REPO / "manifests/base/serving.yaml") if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    sc = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["automountServiceAccountToken"] is False
    assert sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(container["resources"])
    assert container["livenessProbe"] and container["readinessProbe"]
    assert not any("secretKeyRef" in str(e) for e in container["env"])  # the key is a mounted file


def test_deployer_role_is_least_privilege():
    role = next(d for d in _docs(REPO / "manifests/base/rbac.yaml") if d["kind"] == "Role")
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "create", "patch"}
        assert set(rule["resources"]) <= {"deployments", "configmaps"}
        if "deployments" in rule["resources"]:  # the one serving Deployment, never a new one
            assert rule["resourceNames"] == ["kfp-rai-serving"] and "create" not in rule["verbs"]
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


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

    def tasks(dag):
        for name, task in dag["tasks"].items():
            yield name, task
            sub = task.get("componentRef", {}).get("name", "")
            if sub.startswith("comp-condition"):
                yield from tasks(spec["components"][sub]["dag"])

    all_tasks = dict(tasks(spec["root"]["dag"]))
    for name in ("load-dataset", "load-dataset-2"):
        assert all_tasks[name]["retryPolicy"]["maxRetryCount"] == 2
        assert not all_tasks[name].get("cachingOptions", {}).get("enableCache", False)
    for name in ("detect-drift", "register-model", "register-model-2"):
        assert not all_tasks[name].get("cachingOptions", {}).get("enableCache", False), name
    assert all_tasks["train-model"]["cachingOptions"]["enableCache"] is True
    # The pseudonymization key reaches the load tasks from its Secret (kfp-kubernetes).
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("exec-load-dataset", "exec-load-dataset-2"):
        (secret,) = platform[name]["secretAsEnv"]
        assert secret["secretName"] == "kfp-rai-pseudonymization" and secret["optional"] is True
        assert secret["keyToEnv"] == [{"envVar": "KFP_RAI_HMAC_KEY", "secretKey": "hmac-key"}]
