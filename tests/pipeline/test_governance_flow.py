"""The README's "From candidate to production", end to end on what `kfp-rai run` registered: list,
approve, promote, serve what production names, a second version, promote, roll back, verify."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from kfp_rai.cli import main

pytestmark = pytest.mark.slow
TOKEN = "serving-token-for-the-governance-flow"


def _models(capsys, *args: str) -> str:
    code = main(["models", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _serve(registry: Path, tmp_path: Path, n: int) -> tuple[str, str]:
    """Serve the production alias, predict one row, stop with SIGTERM: (first line, the prediction)."""
    kfp_rai = str(Path(sys.executable).with_name("kfp-rai"))
    env = {**os.environ, "KFP_RAI_SERVING_TOKEN": TOKEN, "KFP_RAI_AUDIT_KEY": "audit-key-for-the-governance-flow!"}
    log = tmp_path / f"audit-{n}.jsonl"
    args = ["serve", "--registry", str(registry), "--model", "adult-income", "--alias", "production", "--port", "0"]
    args += ["--state-dir", str(tmp_path / f"state-{n}"), "--audit-log", str(log), "--new-audit-log"]
    proc = subprocess.Popen([kfp_rai, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving adult-income version "), line or proc.stderr.read()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        row = {
            "age": 45, "workclass": "Private", "fnlwgt": 200000, "education": "Masters", "education-num": 14,
            "marital-status": "Married-civ-spouse", "occupation": "Exec-managerial", "relationship": "Husband",
            "capital-gain": 0, "capital-loss": 0, "hours-per-week": 50, "native-country": "United-States",
        }  # fmt: skip
        request = urllib.request.Request(
            f"{url}/v1/models/adult-income:predict",
            data=json.dumps({"instances": [row]}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())["predictions"][0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    records = [json.loads(x) for x in log.read_text().splitlines()]
    start = next(r for r in records if r["event"] == "start")
    assert start["approval"]["type"] in ("promoted", "rolled_back") and start["unapproved_model_allowed"] is False
    verify = subprocess.run([kfp_rai, "audit", "verify", str(log)], env=env, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    return line, answer


def test_from_candidate_to_production_and_back(drift_run, tmp_path, capsys):
    # The run registered the model (version 1, a candidate), and its refresh stage a challenger trained on
    # the drifted current data (version 2, under the challenger alias); it said what a person does next.
    assert "Next, a person decides: adult-income version" in drift_run.printed
    production = drift_run.record["stages"]["production"]
    assert production["state"] == "candidate" and "kfp-rai models approve adult-income" in production["next_step"]
    registry = tmp_path / "registry"
    shutil.copytree(drift_run.registry, registry)  # the session's run stays as it was for other tests
    where = ["--registry", str(registry)]
    listed = json.loads(_models(capsys, "list", "adult-income", *where, "--json"))["adult-income"]
    assert [v["state"] for v in listed["versions"]] == ["candidate", "candidate"]
    assert listed["aliases"] == {"challenger": "2"}
    launcher = listed["versions"][0]["launched_by"]
    assert launcher  # the OS user who ran `kfp-rai run`: separation of duties keeps them from approving
    assert main(["models", "approve", "adult-income", "1", "--by", launcher, "--note", "mine", *where]) == 2
    assert "separation of duties" in capsys.readouterr().err
    assert main(["models", "promote", "adult-income", "1", "--by", "Dana Reviewer", *where]) == 2
    assert "is not approved" in capsys.readouterr().err

    _models(capsys, "approve", "adult-income", "1", "--by", "Dana Reviewer", "--note", "warnings accepted", *where)
    _models(capsys, "promote", "adult-income", "1", "--by", "Dana Reviewer", *where)
    first, _ = _serve(registry, tmp_path, 1)
    assert first.startswith("serving adult-income version 1 ")

    # The challenger is not approved: serving it is refused; a person approves it, then promotes it.
    kfp_rai = str(Path(sys.executable).with_name("kfp-rai"))
    refused = subprocess.run(
        [kfp_rai, "serve", "--registry", str(registry), "--model", "adult-income", "--alias", "challenger"],
        env={**os.environ, "KFP_RAI_SERVING_TOKEN": TOKEN, "KFP_RAI_AUDIT_KEY": "audit-key-for-the-governance-flow!"},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "records no approval" in refused.stderr
    _models(
        capsys, "approve", "adult-income", "2", "--by", "Lee Validator", "--note", "retrained on current data", *where
    )
    _models(capsys, "promote", "adult-income", "2", "--by", "Lee Validator", *where)
    second, _ = _serve(registry, tmp_path, 2)
    assert second.startswith("serving adult-income version 2 ")
    aliases = json.loads(_models(capsys, "list", "adult-income", *where, "--json"))["adult-income"]["aliases"]
    assert aliases == {"production": "2"}  # promoting the challenger moved production and cleared its alias

    out = _models(capsys, "rollback", "adult-income", "--by", "Ops On-Call", "--note", "incident 17", *where)
    assert "version 1: back in production (rolled back from version 2)" in out
    third, _ = _serve(registry, tmp_path, 3)
    assert third.startswith("serving adult-income version 1 ")

    history = json.loads(_models(capsys, "history", "adult-income", *where, "--json"))
    assert [(e["type"], e["version"]) for e in history][2:] == [
        ("approved", "1"),
        ("promoted", "1"),
        ("approved", "2"),
        ("promoted", "2"),
        ("rolled_back", "1"),
    ]
    assert "2 of 2 versions verified; production 1" in _models(capsys, "verify", *where)
    page = tmp_path / "card.html"
    _models(capsys, "show", "adult-income", "production", *where, "--html", str(page))
    html = page.read_text()
    assert "Approvals and deployment history" in html and "incident 17" in html and "Dana Reviewer" in html
    assert "adult-income version 1" in html and "version candidate" not in html
