"""The whole lifecycle through `kfp-rai run` (kfp.local), as a user runs it."""

import json
from pathlib import Path

import pytest
import yaml

from kfp_rai._runrecord import validate_run_record
from kfp_rai.cli import main
from kfp_rai.io import read_table, write_table

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path, *extra):
    out = tmp_path / "run"
    code = main(["run", "--output", str(out), "--registry", str(tmp_path / "registry"), "--quiet", *extra])
    record = json.loads((out / "run.json").read_text())
    validate_run_record(record)
    return code, out, record


def test_default_run_blocks_the_unfair_model_with_reasons(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, record = _run(tmp_path)
    assert code == 0 and record["pipeline"] == "lifecycle" and record["status"] == "succeeded"
    stages = record["stages"]
    assert list(stages) == ["discovery", "training", "validation", "production", "refresh"]
    assert [s["status"] for s in stages.values()] == ["failed", "passed", "failed", "failed", "passed"]
    assert "sex=Female" in stages["discovery"]["reason"]
    assert stages["discovery"]["groups"]["sex=Female"]["ratio"] < 0.8
    validation = stages["validation"]
    assert validation["overall"]["accuracy"] == pytest.approx(0.87, abs=0.01)
    assert set(validation["per_group"]["sex"]) == {"Female", "Male"}
    assert validation["disparities"]["sex"]["demographic_parity_ratio"] < 0.8
    production = stages["production"]
    assert production["registered"] is False and production["version"] is None
    assert production["deployed"] is False and production["deployment"].startswith("nothing to deploy")
    assert production["reason"].startswith("not registered: discovery gate")
    assert len(production["sha256"]) == 64
    assert stages["refresh"]["drift_detected"] is False and stages["refresh"]["retrain"] == {"triggered": False}
    for stage in stages.values():
        for artifact in stage["artifacts"]:
            assert (out / artifact).exists(), artifact
    for expected in (
        "production/model_card.md",
        "production/model_card.html",
        "training/model/model.skops",
        "validation/validation.html",
        "validation/explanation.html",
        "discovery/representativeness.html",
        "refresh/drift.html",
        "logs/kfp-local.log",
    ):
        assert (out / expected).is_file(), expected
    assert "BLOCKED" in (out / "production/model_card.md").read_text()
    assert not (tmp_path / "registry" / "adult-income").exists()  # nothing registered


def test_registers_then_retrains_on_drift(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # CI may itself run in a pod
    current = read_table("bundled:adult-test")
    write_table(current.assign(age=current["age"] + 15), tmp_path / "current.parquet")
    policy = REPO / "examples" / "policies" / "adult-record-warnings.yaml"
    code, out, record = _run(
        tmp_path, "--policy", str(policy), "--current", str(tmp_path / "current.parquet"), "--deploy"
    )
    assert code == 0, record
    stages = record["stages"]
    assert stages["production"]["registered"] is True
    # Deployment was asked for, but there is no cluster here: skipped, with the reason and the manifest.
    assert stages["production"]["deployed"] is False
    assert stages["production"]["deployment"].startswith("skipped: not running in a Kubernetes cluster")
    manifest = list(yaml.safe_load_all((out / "production" / "serving-manifest.yaml").read_text()))
    # What would be applied (the model ConfigMap, the Deployment's model fields), then the result.
    assert [m["kind"] for m in manifest] == ["ConfigMap", "Deployment", "Deployment"]
    assert manifest[2]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    refresh = stages["refresh"]
    assert refresh["drift_detected"] is True and refresh["drifted_columns"] == ["age"]
    assert refresh["retrain"]["triggered"] is True and refresh["retrain"]["registered"] is True
    assert refresh["status"] == "passed"
    # The main and the retrain registrations are independent branches: either may run first.
    version = stages["production"]["version"]
    assert {version, refresh["retrain"]["version"]} == {"1", "2"}
    registry = tmp_path / "registry" / "adult-income"
    assert sorted(p.name for p in registry.iterdir()) == ["1", "2"]
    meta = json.loads((registry / version / "metadata.json").read_text())
    assert meta["sha256"] == stages["production"]["sha256"]
    assert "passed with a warning" in (registry / version / "model_card.md").read_text()
    assert (out / "refresh" / "retrain" / "production" / "model_card.md").is_file()


def test_a_failing_task_fails_the_run_and_says_where(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, record = _run(tmp_path, "--test-size", "0.9999")
    assert code == 1 and record["status"] == "failed"
    failed = [name for name, s in record["stages"].items() if s["status"] == "failed"]
    assert failed and record["error"]
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "registry" / "adult-income").exists()
