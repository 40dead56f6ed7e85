"""Container tests: the image built on a Debian base made here (no Docker Hub), the lifecycle run in
it through kfp.local's DockerRunner, the server started in it as KServe starts it.

They run with ``make test-containers`` (which sets ``KFP_RAI_CONTAINER_TESTS=1``); without a
reachable Docker engine they skip with the reason, except where ``KFP_RAI_CONTAINERS_REQUIRED=1``
(CI, whose `.ci/run` starts its own engine): there a missing engine fails them.

The image: ``KFP_RAI_TEST_IMAGE=REF`` uses one already built; otherwise ``scripts/base-image.sh``
builds (or reuses) the Debian base and ``make image`` builds ``kfp-rai:test`` on it.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("KFP_RAI_CONTAINERS_REQUIRED") == "1"
TEST_IMAGE = "kfp-rai:test"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("KFP_RAI_CONTAINER_TESTS") == "1" or REQUIRED:
        return
    skip = pytest.mark.skip(reason="container tests build and run the image: `make test-containers` runs them")
    for item in items:
        if "tests/container/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (KFP_RAI_CONTAINERS_REQUIRED=1: the container tests must run here)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine() -> None:
    if shutil.which("docker") is None:
        _unavailable("no docker CLI (apt-get install docker.io)")
    done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if done.returncode != 0:
        _unavailable(f"no Docker engine reachable: {' '.join(done.stderr.split())[:200]}")


@pytest.fixture(scope="session")
def image(engine) -> str:
    """The kfp-rai image under test (built once per session unless KFP_RAI_TEST_IMAGE names one)."""
    given = os.environ.get("KFP_RAI_TEST_IMAGE")
    if given:
        if subprocess.run(["docker", "image", "inspect", given], capture_output=True).returncode != 0:
            pytest.fail(f"KFP_RAI_TEST_IMAGE={given} is not on this Docker engine")
        return given
    base = subprocess.run(["bash", "scripts/base-image.sh"], cwd=REPO, capture_output=True, text=True, timeout=1800)
    if base.returncode != 0:
        _unavailable(f"scripts/base-image.sh could not build the Debian base: {base.stderr.strip()[-300:]}")
    ref = base.stdout.strip().splitlines()[-1]
    built = subprocess.run(
        ["make", "image", f"BASE_IMAGE={ref}", f"IMAGE={TEST_IMAGE}"], cwd=REPO, capture_output=True, text=True,
        timeout=3600,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return TEST_IMAGE
