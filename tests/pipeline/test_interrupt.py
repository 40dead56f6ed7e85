"""Interrupting `kfp-rai run` stops the whole pipeline: no process of it survives, nothing registers
afterwards, and every registry version is complete and signed or absent."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from kfp_rai.core.signing import verify_model_dir
from kfp_rai.core.tables import read_table, write_table

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
KFP_RAI = str(Path(sys.executable).with_name("kfp-rai"))


def _processes_of(mark: str) -> list[int]:
    """Processes carrying this run's marker in their environment (the CLI, the pipeline, its tasks)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if f"KFP_RAI_TEST_RUN={mark}".encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _registry_state(registry: Path) -> list[str]:
    return sorted(str(p.relative_to(registry)) for p in registry.rglob("*")) if registry.exists() else []


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    path = tmp_path_factory.mktemp("current") / "current.parquet"
    current = read_table("bundled:adult-test")
    write_table(current.assign(age=current["age"] + 15), path)
    return path


@pytest.mark.parametrize(
    ("after", "sig"),
    [
        ("discovery  load data", signal.SIGINT),  # Ctrl-C during discovery
        ("production model card", signal.SIGTERM),  # right before registration
        ("refresh    retrain: train model", signal.SIGTERM),  # during the retrain, after one registration
    ],
    ids=["discovery", "before-registration", "retrain"],
)
def test_an_interrupted_run_stops_everything_and_registers_nothing_afterwards(after, sig, tmp_path, drifted):
    mark = uuid.uuid4().hex
    registry = tmp_path / "registry"
    command = [
        KFP_RAI,
        "run",
        "--policy",
        str(REPO / "examples/policies/adult-record-warnings.yaml"),
        "--collection-plan",
        str(REPO / "src/kfp_rai/data/adult/collection_plan.yaml"),
        "--current",
        str(drifted),
        "--output",
        str(tmp_path / "run"),
        "--registry",
        str(registry),
    ]
    env = {**os.environ, "KFP_RAI_TEST_RUN": mark}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env
    ) as proc:
        for line in proc.stdout:
            if line.startswith(f"  {after}") and "done" in line:
                proc.send_signal(sig)
                break
        else:
            proc.wait()
            pytest.fail(f"the run ended before {after!r} finished")
        code = proc.wait(timeout=60)
        stderr = proc.stderr.read()
    # When `kfp-rai run` returns, the whole pipeline is gone already: no orphan can register anything.
    # (Checked at once: kfp.local's own tasks would die of a broken pipe at their next log line,
    # which hides an orphan from a later look.)
    assert _processes_of(mark) == []
    assert code == 128 + sig, stderr
    assert stderr.startswith(f"kfp-rai: interrupted ({signal.Signals(sig).name})") and "Traceback" not in stderr
    state = _registry_state(registry)
    versions = [registry / "adult-income" / v for v in ("1", "2") if (registry / "adult-income" / v).exists()]
    for version in versions:
        verify_model_dir(version)  # complete and signed, or absent
    assert not any(".staging-" in p for p in state)
    if after.startswith("discovery"):
        assert versions == []
    if after.startswith("refresh"):
        assert [v.name for v in versions] == ["1"]  # the main model, not the interrupted retrain
    time.sleep(3)
    assert _registry_state(registry) == state  # nothing registered after the interrupt


def test_a_killed_cli_takes_its_pipeline_down_with_it(tmp_path, monkeypatch):
    """SIGKILL cannot be caught: the pipeline notices its parent is gone and stops its own group."""
    import tempfile

    # A temporary directory of its own: any other run (another test worker's) sweeps stale scratch too.
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    mark = uuid.uuid4().hex
    registry = tmp_path / "registry"
    command = [
        KFP_RAI,
        "run",
        "--policy",
        str(REPO / "examples/policies/adult-record-warnings.yaml"),
        "--output",
        str(tmp_path / "run"),
        "--registry",
        str(registry),
    ]
    env = {**os.environ, "KFP_RAI_TEST_RUN": mark, "TMPDIR": str(scratch_root)}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env
    ) as proc:
        for line in proc.stdout:
            if line.startswith("  training   train model") and "done" in line:
                proc.kill()
                break
        proc.wait(timeout=30)
    deadline = time.monotonic() + 5
    while _processes_of(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_of(mark) == []
    time.sleep(3)
    assert _registry_state(registry) == []  # the orphan never reached registration
    # Its scratch directory (data, a signed model) could not be removed by the killed CLI: the next
    # run sweeps it.
    from kfp_rai.cli._run import _sweep_stale_scratch

    left = [d for d in _scratch_dirs() if (d / "owner.pid").read_text() == str(proc.pid)]
    assert len(left) == 1
    _sweep_stale_scratch()
    assert not left[0].exists()


def _scratch_dirs() -> list[Path]:
    import tempfile

    return [d for d in Path(tempfile.gettempdir()).glob("kfp-rai-run-*") if (d / "owner.pid").is_file()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_runner_killed_mid_task_leaves_no_task_behind(tmp_path):
    """The pipeline runner dies by SIGKILL during training: its tasks keep no process alive."""
    mark = uuid.uuid4().hex
    command = [KFP_RAI, "run", "--output", str(tmp_path / "run"), "--registry", str(tmp_path / "registry")]
    env = {**os.environ, "KFP_RAI_TEST_RUN": mark}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env
    ) as proc:
        for line in proc.stdout:
            if line.startswith("  discovery  split train/test") and "done" in line:
                runner = [p for p in _processes_of(mark) if b"kfp_rai.pipelines.local" in _cmdline(p)]
                assert len(runner) == 1
                os.kill(runner[0], signal.SIGKILL)
                break
        rest = proc.stdout.read()
        code = proc.wait(timeout=60)
        stderr = proc.stderr.read()
    assert code == 1 and "Traceback" not in stderr, (line, rest, stderr)
    assert _processes_of(mark) == []
    assert "the local pipeline runner was killed by SIGKILL" in stderr
    assert "Pipeline FAILED: the local pipeline runner was killed" in rest
