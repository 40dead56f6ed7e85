"""The kfp-rai image as it ships: small, non-root, no build tools, runs read-only without network;
every task of the lifecycle in it (kfp.local's DockerRunner); the server in it as KServe starts it."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kfp_rai import __version__

pytestmark = pytest.mark.container

MAX_IMAGE_BYTES = 1_000_000_000  # issue #20's target for the image


def docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} ... failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def test_the_image_is_small_non_root_and_holds_no_build_tools(image):
    (info,) = json.loads(docker("image", "inspect", image).stdout)
    assert info["Config"]["User"] == "10001:10001"
    labels = info["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.base.name"]  # the base it was built on
    if not os.environ.get("KFP_RAI_TEST_IMAGE"):  # built here: from this commit (-dirty: with local changes)
        repo = Path(__file__).resolve().parents[2]
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        assert labels["org.opencontainers.image.revision"].removesuffix("-dirty") == head
    assert info["Size"] <= MAX_IMAGE_BYTES, f"{info['Size'] / 1e6:.0f} MB"
    # No compiler and no pip in the runtime stage (apt-get is the base's own; the root is read-only).
    probe = (
        "import shutil, kfp_rai, sklearn, fairlearn, shap, kserve, kfp; "
        "print(kfp_rai.__version__, [t for t in ('gcc', 'cc', 'c++', 'pip', 'pip3') if shutil.which(t)])"
    )
    done = docker("run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
                  image, "python", "-c", probe)  # fmt: skip
    assert done.stdout == f"{__version__} []\n", done.stdout + done.stderr
    # The root file system is read-only and the user cannot write outside /tmp.
    write = docker("run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", image,
                   "python", "-c", "open('/opt/venv/x', 'w')", check=False)  # fmt: skip
    assert write.returncode != 0 and ("Read-only file system" in write.stderr or "Permission denied" in write.stderr)


def test_the_lifecycle_runs_every_task_in_the_image(image, blocked_run, lifecycle, tmp_path):
    """Same pipeline, same verdicts, same trained model as the subprocess runner; outputs stay the user's."""
    since = str(int(time.time()) - 1)
    run = lifecycle(tmp_path, "--quiet", "--runner", "docker", "--image", image)
    assert run.code == blocked_run.code
    # Every task ran in its own container of this image (the engine's own record of what it started).
    started = docker("events", "--since", since, "--until", str(int(time.time()) + 1), "--format", "{{json .}}",
                     "--filter", "event=start", "--filter", "label=kfp-rai.run").stdout.splitlines()  # fmt: skip
    images = [json.loads(line)["Actor"]["Attributes"]["image"] for line in started]
    assert images == [image] * len(run.record["tasks"]), (images, len(run.record["tasks"]))

    def verdicts(record: dict) -> dict:
        return {name: (stage["status"], stage.get("reason")) for name, stage in record["stages"].items()}

    assert verdicts(run.record) == verdicts(blocked_run.record)
    assert (run.out / "index.html").is_file()
    # The same model: skops names arrays by Python object id and stamps zip entries with the time, so
    # two runs never give the same bytes (the subprocess runner's neither); what the model computes,
    # its fitted parameters and its scores on the test split, must be identical.
    from kfp_rai.core.model_dir import load_model_dir
    from kfp_rai.core.tables import read_table

    ours, meta = load_model_dir(run.out / "training" / "model")
    theirs, _ = load_model_dir(blocked_run.out / "training" / "model")
    test = read_table(str(blocked_run.out / "discovery" / "test.parquet"))[list(meta["features"])]
    assert (ours.predict_proba(test) == theirs.predict_proba(test)).all()
    assert {p.stat().st_uid for p in run.out.rglob("*")} == {os.getuid()}
    # Nothing of the run is left behind on the engine.
    assert docker("ps", "--all", "--quiet", "--filter", "label=kfp-rai.run").stdout.strip() == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def promoted(versions):
    """A registered version a person approved and promoted, its signed promotion event, and a
    version its gates blocked."""
    from kfp_rai.production import servable_version

    signed = servable_version(model_uri=str(versions.production)).signed_approval
    return versions.production, signed, versions.blocked


ROW = {
    "age": 40, "workclass": "Private", "fnlwgt": 100000, "education": "Bachelors", "education-num": 13,
    "marital-status": "Never-married", "occupation": "Sales", "relationship": "Not-in-family",
    "capital-gain": 0, "capital-loss": 0, "hours-per-week": 40, "native-country": "United-States",
}  # fmt: skip


def test_the_server_container_as_kserve_starts_it(image, promoted, tmp_path):
    """The InferenceService's container, started by hand as KServe would: the version copied to
    /mnt/models, Secrets as read-only files, both audit volumes, read-only root, non-root, no
    capabilities; host networking on a loopback port (no registry or bridge network is needed)."""
    from kfp_rai.core.signing import ensure_local_keys
    from kfp_rai.production import deploy_model, inference_service
    from kfp_rai.production._inference_service import CLAIMS, SECRETS

    model_dir, approval, blocked_dir = promoted
    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    _, objects = deploy_model(
        model_dir, model_name="adult-income", version="1", storage_uri="s3://m/adult-income/1", image=image,
        approval_event=approval,
    )  # fmt: skip
    spec = inference_service(objects)["spec"]["predictor"]
    (container,) = spec["containers"]
    uid = spec["securityContext"]["runAsUser"]
    pod = tmp_path / "pod"
    volumes = {"/mnt/models": pod / "mnt-models"}
    shutil.copytree(model_dir, volumes["/mnt/models"])  # the storage initializer's copy
    keys, _ = ensure_local_keys()
    token = "token-from-the-secret-0123456789"
    contents = {
        "kfp-rai-verify-key": (Path(keys) / "verify-key.pem").read_bytes(),
        "kfp-rai-audit": b"a" * 64,
        "kfp-rai-pseudonymization": b"b" * 64,
        "kfp-rai-serving-token": token.encode(),
    }
    for volume, (secret, path, _, file) in SECRETS.items():
        volumes[path] = pod / volume
        volumes[path].mkdir(parents=True)
        (volumes[path] / file).write_bytes(contents[secret])
        if volume == "verify-key":
            decision = (Path(keys) / "decision-verify-key.pem").read_bytes()
            (volumes[path] / "decision-verify-key.pem").write_bytes(decision)
    for volume, (_, path, _) in CLAIMS.items():
        volumes[path] = pod / volume
        volumes[path].mkdir(mode=0o700)
    for path in pod.rglob("*"):  # what fsGroup and the Secrets' defaultMode do in a pod
        os.chown(path, uid, uid)
        path.chmod(0o700 if path.is_dir() else 0o400)
    for path in volumes["/mnt/models"].rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o444)

    port = _free_port()
    args = list(container["args"])
    args[args.index("--port") + 1], args[args.index("--host") + 1] = str(port), "127.0.0.1"
    env = [f"{e['name']}={e['value']}" for e in container["env"]]
    mounts = [
        f"--volume={host}:{inside}:{'ro' if inside == '/mnt/models' or inside.startswith('/var/run/secrets') else 'rw'}"
        for inside, host in volumes.items()
    ]
    run = ["--network", "host", "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid", "--user", f"{uid}:{uid}",
           "--cap-drop", "ALL", "--security-opt", "no-new-privileges", *mounts,
           *(f"--env={e}" for e in env)]  # fmt: skip
    name = f"kfp-rai-serve-test-{os.getpid()}"
    docker("run", "--detach", "--name", name, *run, image, *container["command"], *args)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if _request(url + container["readinessProbe"]["httpGet"]["path"])[0] == 200:
                    break
            except OSError:
                pass
            state = json.loads(docker("inspect", name).stdout)[0]["State"]
            assert state["Running"] and time.monotonic() < deadline, docker("logs", name).stderr[-2000:]
            time.sleep(0.5)
        v1 = f"{url}/v1/models/adult-income:predict"
        assert _request(v1, {"instances": [ROW]})[0] == 401  # no token
        status, body = _request(v1, {"instances": [ROW]}, token)
        assert status == 200 and len(body["predictions"]) == 1
        v2 = {"inputs": [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "INT64", "data": [v]}
                         for k, v in ROW.items()]}  # fmt: skip
        status, body = _request(f"{url}/v2/models/adult-income/infer", v2, token)
        assert status == 200 and body["outputs"], body
        # The kill switch, by the CLI inside the pod: predictions stop, then resume.
        state_dir = args[args.index("--state-dir") + 1]
        docker("exec", name, "kfp-rai", "disable", "--state-dir", state_dir, "--reason", "test")
        assert _request(v1, {"instances": [ROW]}, token)[0] == 503
        docker("exec", name, "kfp-rai", "enable", "--state-dir", state_dir)
        assert _request(v1, {"instances": [ROW]}, token)[0] == 200
    finally:
        docker("stop", "--time", "30", name, check=False)  # SIGTERM, as the kubelet stops a pod
    # A restart on the same volumes (the pod's, after a crash or a new version) begins a new log.
    docker("start", name)
    try:
        deadline = time.monotonic() + 120
        while "serving adult-income version 1" not in docker("logs", name).stdout:
            assert time.monotonic() < deadline, docker("logs", name).stderr[-2000:]
            time.sleep(0.5)
    finally:
        docker("stop", "--time", "30", name, check=False)
        docker("rm", "--force", name, check=False)
    logs = sorted((volumes["/var/lib/kfp-rai"] / "audit").glob("audit-*.jsonl"))
    assert len(logs) == 2
    events = [json.loads(line)["event"] for line in logs[0].read_text().splitlines()]
    assert events[:2] == ["audit_log_created", "start"] and events[-1] == "stop"
    assert {"operator_disabled", "operator_enabled"} <= set(events)
    # Every log verifies, as an operator's Job mounting the same volumes would check it.
    for log in logs:
        done = docker("run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--user", f"{uid}:{uid}",
                      *mounts, *(f"--env={e}" for e in env), image, "kfp-rai", "audit", "verify",
                      f"/var/lib/kfp-rai/audit/{log.name}", "--state-dir", state_dir, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    # Without the signed promotion the same container serves nothing: one line, exit 2.
    bare = [e for e in run if not e.startswith("--env=KFP_RAI_APPROVAL_EVENT=")]
    done = docker("run", "--rm", *bare, image, *container["command"], *args, check=False)
    assert done.returncode == 2 and "not approved" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    # A version its gates blocked, in the storage initializer's place: refused before anything is served.
    shutil.rmtree(volumes["/mnt/models"])
    shutil.copytree(blocked_dir, volumes["/mnt/models"])
    for path in [volumes["/mnt/models"], *volumes["/mnt/models"].rglob("*")]:
        os.chown(path, uid, uid)
        path.chmod(0o755 if path.is_dir() else 0o444)
    done = docker("run", "--rm", *run, image, *container["command"], *args, check=False)
    assert done.returncode == 2 and "its gates did not let it through" in done.stderr, done.stderr


def test_the_image_carries_an_sbom_of_exactly_what_it_holds(image):
    """CycloneDX 1.5 at the path its label names: every installed distribution with its version and
    package URL, kfp-rai at the image's version, and nothing the image does not hold (no pip)."""
    (info,) = json.loads(docker("image", "inspect", image).stdout)
    path = info["Config"]["Labels"]["io.kfp-rai.sbom"]
    probe = (
        "import json, importlib.metadata as m; "
        f"s = json.load(open({path!r})); "
        "have = sorted((d.metadata['Name'], d.version) for d in m.distributions()); "
        "print(json.dumps([s['bomFormat'], s['specVersion'], s['metadata']['component']['version'], "
        "sorted((c['name'], c['version']) for c in s['components']) == have, "
        "[c for c in s['components'] if c['name'] in ('kfp-rai', 'pip')]]))"
    )
    done = docker("run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", image, "python", "-c", probe)
    form, spec, version, exact, named = json.loads(done.stdout)
    assert (form, spec, version, exact) == ("CycloneDX", "1.5", __version__, True)
    assert [(c["name"], c["version"], c["purl"]) for c in named] == [
        ("kfp-rai", __version__, f"pkg:pypi/kfp-rai@{__version__}")
    ]
