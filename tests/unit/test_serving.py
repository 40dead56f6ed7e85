"""The serving app on loopback: validation, alerts, the keyed audit trail, kill switch, safe state."""

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from dataclasses import asdict

import pytest

from kfp_rai.cli import main
from kfp_rai.core.model_dir import save_model_dir
from kfp_rai.discovery import pseudonym
from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.serving import AuditLog, ModelService, load_served_model, safe_state_dir, serve, verify_audit_log
from kfp_rai.training import train_model

SENSITIVE = ["sex", "race"]
KEY = b"audit-key-for-tests-0123456789abcdef"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, adult):
    model, summary = train_model(
        adult.sample(3000, random_state=0), target="income", positive_label=">50K", sensitive_features=SENSITIVE
    )
    path = tmp_path_factory.mktemp("registry") / "adult-income" / "1"
    save_model_dir(model, path, {**asdict(summary), "name": "adult-income", "version": "1"})
    return path


@pytest.fixture
def server(model_dir, tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl", key=KEY, create=True)
    service = ModelService(
        load_served_model(str(model_dir)), audit=audit, state_dir=tmp_path / "state", hmac_key=b"test-key-0123456789"
    )
    httpd = serve(service, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", tmp_path
    httpd.shutdown()
    httpd.server_close()
    service.close()


def _call(url, body=None, raw=None, headers=None):
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _instance(adult, **changes):
    row = adult.drop(columns=["income", "sex", "race"]).iloc[0].to_dict()
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    return {**row, **changes}


def _events(path):
    """The events after the log's creation record."""
    events = [json.loads(line)["event"] for line in path.read_text().splitlines()]
    assert events[0] == "audit_log_created"
    return events[1:]


def test_predicts_with_alerts_and_audits_without_raw_values(server, adult):
    url, tmp = server
    assert _call(f"{url}/healthz") == (200, {"status": "ok"})
    assert _call(f"{url}/readyz")[0] == 200
    assert _call(f"{url}/v1/model")[1]["version"] == "1"
    status, body = _call(
        f"{url}/v1/predict",
        {"instances": [_instance(adult, id="customer-42"), _instance(adult, age=140, workclass="Astronaut")]},
    )
    assert status == 200
    first, second = body["predictions"]
    assert 0 <= first["probability"] <= 1 and first["label"] in {">50K", "not >50K"} and first["alerts"] == []
    assert second["alerts"] == ["age outside training range [17, 90]", "workclass: category not seen in training"]
    log = (tmp / "audit.jsonl").read_text()
    assert "customer-42" not in log and "Astronaut" not in log
    # The audit log carries the pipeline's pseudonym for the id, so the two can be joined.
    assert "hmac:" + pseudonym("customer-42", b"test-key-0123456789") in log
    record = json.loads(log.splitlines()[-1])
    assert record["mac"] == body["audit"]
    # The request is fingerprinted with the audit key: an unkeyed hash of it could be brute-forced.
    assert len(record["request_hmac"]) == 64 and "request_sha256" not in record


def test_every_request_is_recorded_and_no_rejected_value_is_echoed(server, adult):
    url, tmp = server
    missing = _instance(adult)
    del missing["age"]
    email = "jane.doe@example.com"
    for payload, fragment in [
        ({"rows": []}, '{"instances"'),
        ({"instances": [missing]}, "lacks features ['age']"),
        ({"instances": [_instance(adult, age=email)]}, "'age' must be a number, got text"),
        ({"instances": []}, "between 1 and"),
        ({"instances": [_instance(adult, age=10**400)]}, "'age' must be a finite number within float range"),
    ]:
        status, body = _call(f"{url}/v1/predict", payload)
        assert status == 400 and fragment in body["error"] and email not in body["error"]
    assert _call(f"{url}/v1/predict", raw=b"{not json")[0] == 400
    assert _call(f"{url}/v1/predict", raw=b"[" * 100_000)[0] == 400  # nested past the parser's depth
    assert _call(f"{url}/v1/predict", raw=b'{"instances": [{"age": ' + b"9" * 5000 + b"}]}")[0] == 400
    log = (tmp / "audit.jsonl").read_text()
    assert _events(tmp / "audit.jsonl") == ["start"] + ["rejected"] * 5 + ["malformed"] * 3
    assert email not in log


def test_kill_switch_takes_effect_at_once_and_operator_actions_are_recorded(server, adult, capsys):
    url, tmp = server
    state = str(tmp / "state")
    assert main(["disable", "--state-dir", state, "--reason", "bias incident 17"]) == 0
    assert "a running server uses" in capsys.readouterr().out
    status, body = _call(f"{url}/v1/predict", {"instances": [_instance(adult)]})
    assert status == 503 and "bias incident 17" in body["error"]
    assert _call(f"{url}/readyz")[0] == 503
    assert main(["enable", "--state-dir", state]) == 0
    assert _call(f"{url}/v1/predict", {"instances": [_instance(adult)]})[0] == 200
    assert _events(tmp / "audit.jsonl") == ["start", "operator_disabled", "refused", "operator_enabled", "predict"]
    disabled = json.loads((tmp / "audit.jsonl").read_text().splitlines()[2])
    assert disabled["reason"] == "bias incident 17" and disabled["seq"] == 1


def test_operator_actions_are_recorded_without_waiting_for_a_request(server):
    import time

    _, tmp = server
    state = str(tmp / "state")
    assert main(["disable", "--state-dir", state, "--reason", "quiet switch-off"]) == 0
    assert main(["enable", "--state-dir", state]) == 0
    deadline = time.monotonic() + 10
    while _events(tmp / "audit.jsonl")[-2:] != ["operator_disabled", "operator_enabled"]:
        assert time.monotonic() < deadline, _events(tmp / "audit.jsonl")
        time.sleep(0.1)


def test_a_corrupt_switch_journal_fails_closed_until_an_operator_acts(server, adult):
    url, tmp = server
    with open(tmp / "state" / "operator.jsonl", "ab") as fh:
        fh.write(b"{broken")
    status, body = _call(f"{url}/v1/predict", {"instances": [_instance(adult)]})
    assert status == 503 and "unreadable" in body["error"]
    assert main(["enable", "--state-dir", str(tmp / "state")]) == 0
    assert _call(f"{url}/v1/predict", {"instances": [_instance(adult)]})[0] == 200
    assert "operator_journal_unreadable" in _events(tmp / "audit.jsonl")


def _chain(tmp_path, n=6, every=3):
    log = AuditLog(tmp_path / "a.jsonl", key=KEY, create=True, checkpoint_every=every)
    for i in range(n):
        log.append({"event": "predict", "n": i})
    log.close()
    return tmp_path / "a.jsonl", tmp_path / "a.jsonl.checkpoints"


def _tamper(path, lines):
    path.write_text("".join(line + "\n" for line in lines))


def test_the_trail_is_intact_and_every_tampering_is_detected(tmp_path):
    path, checkpoints = _chain(tmp_path)
    assert verify_audit_log(path, KEY).ok
    lines = path.read_text().splitlines()
    cases = {
        "edited": [*lines[:2], lines[2].replace('"n":1', '"n":9'), *lines[3:]],
        "removed in the middle": [lines[0], *lines[2:]],
        "reordered": [lines[1], lines[0], *lines[2:]],
        "cut at the end": lines[:4],
        "emptied": [],
    }
    assert '"n":1' in lines[2]
    for name, tampered in cases.items():
        _tamper(path, tampered)
        check = verify_audit_log(path, KEY)
        assert not check.ok, name
    _tamper(path, lines[:4])
    assert "cut to 4 records" in verify_audit_log(path, KEY).message
    _tamper(path, [])
    assert "emptied" in verify_audit_log(path, KEY).message


def test_a_chain_recomputed_without_the_key_is_detected(tmp_path):
    import hashlib

    path, _ = _chain(tmp_path)
    forged, prev = [], "0" * 64
    for line in path.read_text().splitlines():
        record = json.loads(line)
        record.pop("mac")
        record["prev"] = prev
        if record.get("n") == 2:
            record["n"] = 99
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        record["mac"] = prev = hashlib.sha256(canonical).hexdigest()  # the best a writer without the key can do
        forged.append(json.dumps(record))
    _tamper(path, forged)
    check = verify_audit_log(path, KEY)
    assert not check.ok and "written without the audit key" in check.message
    assert not verify_audit_log(tmp_path / "a.jsonl", b"another-key-0123456789abcdef").ok


def test_one_writer_per_log_and_no_silent_new_log(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl", key=KEY, create=True)
    with pytest.raises(IntegrityError, match="in use by another server"):
        AuditLog(tmp_path / "a.jsonl", key=KEY)
    log.append({"event": "predict"})
    log.close()
    AuditLog(tmp_path / "a.jsonl", key=KEY).close()  # reopened: continues the chain
    with pytest.raises(IntegrityError, match="nothing is overwritten"):
        AuditLog(tmp_path / "a.jsonl", key=KEY, create=True)
    shutil.move(tmp_path / "a.jsonl", tmp_path / "moved.jsonl")
    with pytest.raises(IntegrityError, match="no audit log at"):
        AuditLog(tmp_path / "a.jsonl", key=KEY)
    assert "no audit log at" in verify_audit_log(tmp_path / "a.jsonl", KEY).message
    with pytest.raises(IntegrityError, match="nothing is overwritten"):
        AuditLog(tmp_path / "a.jsonl", key=KEY, create=True)  # the checkpoints of the moved log remain


def test_checkpoints_are_found_from_the_log_and_never_missing_or_borrowed(tmp_path):
    elsewhere = tmp_path / "vault" / "a.checkpoints"  # kept apart from the log, as advised
    log = AuditLog(tmp_path / "a.jsonl", key=KEY, checkpoints=elsewhere, create=True, checkpoint_every=2)
    for i in range(5):
        log.append({"event": "predict", "n": i})
    log.close()
    path = tmp_path / "a.jsonl"
    assert verify_audit_log(path, KEY).ok  # found from the log's first record, no flag needed
    lines = path.read_text().splitlines()
    # Cut the log and delete its checkpoints: the cut no longer passes for lack of them.
    _tamper(path, lines[:3])
    shutil.move(elsewhere, tmp_path / "hidden")
    check = verify_audit_log(path, KEY)
    assert not check.ok and "checkpoints" in check.message and "are missing" in check.message
    with pytest.raises(IntegrityError, match="are missing"):
        AuditLog(path, key=KEY)  # and a restart does not paper over it with a fresh checkpoint
    # Another log's checkpoints prove nothing about this one.
    other = AuditLog(tmp_path / "b.jsonl", key=KEY, checkpoints=elsewhere, create=True)
    other.close()
    check = verify_audit_log(path, KEY)
    assert not check.ok and "another log" in check.message
    shutil.move(tmp_path / "hidden", tmp_path / "found")
    check = verify_audit_log(path, KEY, tmp_path / "found")
    assert not check.ok and "cut to 3 records" in check.message
    with pytest.raises(IntegrityError, match="keeps its checkpoints in"):
        AuditLog(tmp_path / "b.jsonl", key=KEY, checkpoints=tmp_path / "elsewhere")


def test_the_audit_commands(tmp_path, capsys, monkeypatch):
    path, checkpoints = _chain(tmp_path)
    monkeypatch.delenv("KFP_RAI_AUDIT_KEY", raising=False)
    assert main(["audit", "new-key", str(tmp_path / "audit.key")]) == 0
    assert oct((tmp_path / "audit.key").stat().st_mode & 0o777) == "0o600"
    assert main(["audit", "new-key", str(tmp_path / "audit.key")]) == 2  # never overwritten
    monkeypatch.setenv("KFP_RAI_AUDIT_KEY", KEY.decode())
    assert main(["audit", "verify", str(path)]) == 0
    assert main(["audit-verify", str(path)]) == 0  # the earlier spelling
    _tamper(path, path.read_text().splitlines()[:2])
    assert main(["audit", "verify", str(path)]) == 1
    assert main(["audit", "verify", str(tmp_path / "deleted.jsonl")]) == 2  # a missing log is not "intact"
    err = capsys.readouterr().err
    assert "cut to 2 records" in err and "Traceback" not in err


def test_serve_refuses_without_an_audit_key_and_says_so_in_development_mode(model_dir, tmp_path, capsys, monkeypatch):
    import subprocess
    import sys
    from pathlib import Path

    monkeypatch.delenv("KFP_RAI_AUDIT_KEY", raising=False)
    monkeypatch.delenv("KFP_RAI_AUDIT_KEY_FILE", raising=False)
    args = ["serve", "--model-uri", str(model_dir), "--state-dir", str(tmp_path / "s"), "--port", "0"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kfp-rai: error: serving needs an audit key") and len(err.splitlines()) == 1
    kfp_rai = str(Path(sys.executable).with_name("kfp-rai"))
    for extra in (["--new-audit-log"], []):  # a first start, and a restart on the same log
        proc = subprocess.Popen(
            [kfp_rai, *args, "--insecure-dev-audit", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout.readline().startswith("serving adult-income version 1 (sha256 ")
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=30)
        assert "WARNING: development mode: the audit log is keyed with a public key" in stderr
    log = tmp_path / "s" / "audit" / "audit.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["event"] for r in records] == ["audit_log_created", "start", "stop", "start", "stop"]  # SIGTERM
    assert not any("request_hmac" in r for r in records)  # a public key would make it brute-forceable
    assert all(r["development_audit_key"] for r in records if r["event"] == "start")


@pytest.mark.parametrize("port", ["99999", "http", "-1"])
def test_a_bad_port_is_one_line(port, capsys):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--model-uri", "x", "--port", port])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "is not a port number" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_tampered_model_is_not_served(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KFP_RAI_AUDIT_KEY", KEY.decode())
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    data = bytearray((copy / "model.skops").read_bytes())
    data[100] ^= 0xFF
    (copy / "model.skops").write_bytes(bytes(data))
    code = main(["serve", "--model-uri", str(copy), "--state-dir", str(tmp_path / "s"), "--new-audit-log"])
    assert code == 2 and "fails its signature check (changed: model.skops)" in capsys.readouterr().err


def test_state_directories_others_can_write_are_refused(tmp_path, capsys):
    safe = safe_state_dir(tmp_path / "new")
    assert oct(safe.stat().st_mode & 0o777) == "0o700"
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(InvalidParameterError, match="writable by others"):
        safe_state_dir(shared)
    assert main(["disable", "--state-dir", str(shared), "--reason", "x"]) == 2
    assert not (shared / "operator.jsonl").exists()
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)  # nobody
    with pytest.raises(InvalidParameterError, match="belongs to another user"):
        safe_state_dir(theirs)
    assert main(["enable", "--state-dir", str(tmp_path / "idle")]) == 0
    assert "no running server uses" in capsys.readouterr().out
