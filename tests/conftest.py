"""Shared fixtures: the bundled Adult data, a model trained on it, and two whole lifecycle runs,
each made once per session and read by every test that needs it (pipeline and browser tests)."""

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from kfp_rai.core.tables import read_table, write_table
from kfp_rai.discovery import split_dataset
from kfp_rai.training import train_model

SENSITIVE = ["sex", "race"]
REPO = Path(__file__).resolve().parents[1]


# The session's whole lifecycle runs, made once and read by tests in several modules: `make test`'s
# two pytest-xdist workers keep those modules together on one worker, so each run is made once.
SHARED_RUNS = frozenset({"blocked_run", "drift_run"})
SHARED_RUN_MODULES = frozenset(
    {
        "tests/browser/test_reports_in_a_browser.py",
        "tests/container/test_image.py",
        "tests/pipeline/test_card_truth.py",
        "tests/pipeline/test_governance_flow.py",
        "tests/pipeline/test_lifecycle.py",
        "tests/pipeline/test_refresh_flow.py",
    }
)


def pytest_xdist_make_scheduler(config, log):
    """A module's tests on one worker (they share its module fixtures), and every module reading the
    shared runs on one worker. (``--dist loadgroup`` cannot do it under pytest 9: xdist's group
    marks never reach its scheduler.)"""
    from xdist.scheduler import LoadScopeScheduling

    class SharedRunsTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "shared-lifecycle-runs" if module in SHARED_RUN_MODULES else module

    return SharedRunsTogether(config, log)


def pytest_collection_modifyitems(config, items):
    """A test that reads a shared run from a module not listed would make the run again on the other
    worker: refuse to start until it is listed."""
    for item in items:
        module = Path(str(item.fspath)).relative_to(REPO).as_posix()
        if SHARED_RUNS & set(item.fixturenames) and module not in SHARED_RUN_MODULES:
            raise pytest.UsageError(
                f"{module} reads a shared lifecycle run: add it to SHARED_RUN_MODULES in tests/conftest.py"
            )


@pytest.fixture(scope="session", autouse=True)
def signing_keys(tmp_path_factory):
    """Every test signs and verifies with a key pair of its own session, never the user's, and keeps
    its state out of the user's; the kfp.local tasks inherit both through the environment."""
    from kfp_rai.core.signing import ensure_local_keys

    config = tmp_path_factory.mktemp("kfp-rai-config")
    saved = {
        k: os.environ.pop(k, None)
        for k in ("KFP_RAI_SIGNING_KEY", "KFP_RAI_SIGNING_KEY_FILE", "KFP_RAI_VERIFY_KEY", "KFP_RAI_VERIFY_KEY_FILE")
    }
    os.environ["KFP_RAI_CONFIG_DIR"] = str(config)
    # The registry heads a user has read (and the kill switch's default place) stay out of ~/.local/state.
    state = tmp_path_factory.mktemp("kfp-rai-state")
    state.chmod(0o700)
    saved["KFP_RAI_STATE_DIR"] = os.environ.pop("KFP_RAI_STATE_DIR", None)
    os.environ["KFP_RAI_STATE_DIR"] = str(state)
    keys, _ = ensure_local_keys()
    yield keys
    os.environ.pop("KFP_RAI_CONFIG_DIR", None)
    os.environ.pop("KFP_RAI_STATE_DIR", None)
    os.environ.update({k: v for k, v in saved.items() if v is not None})


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    return read_table("bundled:adult")


@pytest.fixture(scope="session")
def adult_split(adult):
    return split_dataset(adult, target="income", test_size=0.3, seed=0)


@pytest.fixture(scope="session")
def adult_model(adult_split):
    train, _ = adult_split
    return train_model(train, target="income", positive_label=">50K", sensitive_features=SENSITIVE, seed=0)


@dataclass(frozen=True)
class Versions:
    """A registry of one model, ``adult-income``, with a version in each state serving meets."""

    registry: Path
    production: Path  # version 1: gates passed, approved and promoted by a person
    candidate: Path  # version 2: gates passed, nobody approved it
    blocked: Path  # version 3: its gates failed


@pytest.fixture(scope="session")
def versions(tmp_path_factory, adult) -> Versions:
    """Made once: serving, batch scoring and deployment read it; a test that decides copies it."""
    from dataclasses import asdict

    from kfp_rai.core.model_dir import model_bytes
    from kfp_rai.core.verdict import GateStatus, Verdict
    from kfp_rai.production import ModelRegistry, approve, promote

    model, summary = train_model(
        adult.sample(2000, random_state=0), target="income", positive_label=">50K", sensitive_features=SENSITIVE
    )
    registry = ModelRegistry(str(tmp_path_factory.mktemp("registry")))
    verdicts = (
        Verdict(GateStatus.PASSED, "all gates passed"),
        Verdict(GateStatus.PASSED, "all gates passed"),
        Verdict(GateStatus.FAILED, "fairness: demographic parity difference 0.19 > 0.10"),
    )
    uris = [
        Path(
            registry.register(
                "adult-income",
                model=model_bytes(model),
                model_card=f"# card {n}",
                metadata={**asdict(summary), "decision_threshold": 0.5},
                verdict=verdict,
                launched_by="trainer",
            ).uri
        )
        for n, verdict in enumerate(verdicts, start=1)
    ]
    approve(registry, "adult-income", "1", by="reviewer", note="fine")
    promote(registry, "adult-income", "1", by="reviewer")
    return Versions(Path(registry.uri), *uris)


@dataclass(frozen=True)
class LifecycleRun:
    """A finished `kfp-rai run`: exit code, run directory, run.json, what it printed, its registry."""

    code: int
    out: Path
    record: dict
    printed: str
    registry: Path


def run_lifecycle(base: Path, *extra: str) -> LifecycleRun:
    """`kfp-rai run` as a user types it, into ``base/run`` with the registry in ``base/registry``."""
    from kfp_rai.cli import main
    from kfp_rai.pipelines.run_record import validate_run_record

    out, registry = base / "run", base / "registry"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.MonkeyPatch.context() as patch:
        patch.chdir(base)
        patch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # CI may itself run in a pod
        code = main(["run", "--output", str(out), "--registry", str(registry), *extra])
    record = json.loads((out / "run.json").read_text())
    validate_run_record(record)
    return LifecycleRun(code, out, record, printed.getvalue(), registry)


@pytest.fixture(scope="session")
def blocked_run(tmp_path_factory) -> LifecycleRun:
    """The default run: Adult under the default policy, blocked by its gates."""
    return run_lifecycle(tmp_path_factory.mktemp("blocked"))


@pytest.fixture(scope="session")
def drift_run(tmp_path_factory) -> LifecycleRun:
    """The README's second run: findings recorded as warnings, drifted current data (Adult's, so
    Adult's collection plan describes it), deploy asked."""
    base = tmp_path_factory.mktemp("drift")
    current = read_table("bundled:adult-test")
    write_table(current.assign(age=current["age"] + 15), base / "current.parquet")
    policy = REPO / "examples" / "policies" / "adult-record-warnings.yaml"
    plan = REPO / "src" / "kfp_rai" / "data" / "adult" / "collection_plan.yaml"
    return run_lifecycle(
        base,
        "--quiet",
        "--policy",
        str(policy),
        "--collection-plan",
        str(plan),
        "--current",
        str(base / "current.parquet"),
        "--deploy",
    )


@pytest.fixture
def lifecycle():
    """The runner itself, for tests that need a run of their own (``lifecycle(tmp_path, *args)``)."""
    return run_lifecycle


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A real S3 API (moto's server) on loopback, with one bucket, as pyarrow reaches KFP's store."""
    boto3 = pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED")}
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_EC2_METADATA_DISABLED="true")
    boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1").create_bucket(Bucket="mlpipeline")
    yield f"endpoint_override={host}:{port}&scheme=http"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
