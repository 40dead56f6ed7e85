"""The serving app on loopback: validation, alerts, audit chain, kill switch, tamper evidence."""

import json
import threading
import urllib.error
import urllib.request
from dataclasses import asdict

import pytest

from kfp_rai.cli import main
from kfp_rai.core.model_dir import save_model_dir
from kfp_rai.discovery import pseudonym
from kfp_rai.errors import IntegrityError
from kfp_rai.serving import AuditLog, ModelService, serve, verify_audit_log
from kfp_rai.training import train_model

SENSITIVE = ["sex", "race"]


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
    service = ModelService(
        str(model_dir), audit_log=tmp_path / "audit.jsonl", state_dir=tmp_path / "state", hmac_key=b"test-key"
    )
    httpd = serve(service, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", tmp_path
    httpd.shutdown()
    httpd.server_close()


def _call(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _instance(adult, **changes):
    row = adult.drop(columns=["income", "sex", "race"]).iloc[0].to_dict()
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    return {**row, **changes}


def test_predicts_with_alerts_and_audits_without_raw_values(server, adult):
    url, tmp = server
    assert _call(f"{url}/healthz") == (200, {"status": "ok"})
    assert _call(f"{url}/readyz")[0] == 200
    assert _call(f"{url}/v1/model")[1]["version"] == "1"
    status, body = _call(
        f"{url}/v1/predict",
        {
            "instances": [
                _instance(adult, id="customer-42"),
                _instance(adult, age=140, workclass="Astronaut"),
            ]
        },
    )
    assert status == 200
    first, second = body["predictions"]
    assert 0 <= first["probability"] <= 1 and first["label"] in {">50K", "not >50K"} and first["alerts"] == []
    assert second["alerts"] == ["age outside training range [17, 90]", "workclass: category not seen in training"]
    log = (tmp / "audit.jsonl").read_text()
    assert "customer-42" not in log and "Astronaut" not in log
    # The audit log carries the pipeline's pseudonym for the id, so the two can be joined.
    assert "hmac:" + pseudonym("customer-42", b"test-key") in log
    assert json.loads(log.splitlines()[-1])["hash"] == body["audit"]


def test_bad_requests_are_refused_and_audited(server, adult):
    url, tmp = server
    missing = _instance(adult)
    del missing["age"]
    for payload, fragment in [
        ({"rows": []}, '{"instances"'),
        ({"instances": [missing]}, "lacks features ['age']"),
        ({"instances": [_instance(adult, age="old")]}, "'age' must be a number"),
        ({"instances": []}, "between 1 and"),
    ]:
        status, body = _call(f"{url}/v1/predict", payload)
        assert status == 400 and fragment in body["error"]
    events = [json.loads(line)["event"] for line in (tmp / "audit.jsonl").read_text().splitlines()]
    assert events == ["rejected"] * 4


def test_kill_switch(server, adult, capsys):
    url, tmp = server
    state = str(tmp / "state")
    assert main(["disable", "--state-dir", state, "--reason", "bias incident 17"]) == 0
    status, body = _call(f"{url}/v1/predict", {"instances": [_instance(adult)]})
    assert status == 503 and "bias incident 17" in body["error"]
    assert _call(f"{url}/readyz")[0] == 503
    assert main(["enable", "--state-dir", state]) == 0
    assert _call(f"{url}/v1/predict", {"instances": [_instance(adult)]})[0] == 200
    assert [json.loads(x)["event"] for x in (tmp / "audit.jsonl").read_text().splitlines()] == ["refused", "predict"]


def test_audit_chain_detects_edits_and_removals(tmp_path, capsys):
    log = AuditLog(tmp_path / "a.jsonl")
    for i in range(4):
        log.append({"event": "predict", "n": i})
    assert verify_audit_log(tmp_path / "a.jsonl") == (True, 4, "4 records, chain intact")
    assert main(["audit-verify", str(tmp_path / "a.jsonl")]) == 0
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    (tmp_path / "edited.jsonl").write_text("\n".join([lines[0], lines[1].replace('"n":1', '"n":9'), *lines[2:]]) + "\n")
    assert verify_audit_log(tmp_path / "edited.jsonl")[2] == "line 2 was altered after it was written"
    (tmp_path / "cut.jsonl").write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    assert "does not follow" in verify_audit_log(tmp_path / "cut.jsonl")[2]
    assert main(["audit-verify", str(tmp_path / "cut.jsonl")]) == 1
    assert main(["audit-verify", str(tmp_path / "deleted.jsonl")]) == 2  # a missing log is not "intact"
    with pytest.raises(IntegrityError, match="is broken"):
        AuditLog(tmp_path / "cut.jsonl")
    reopened = AuditLog(tmp_path / "a.jsonl")  # continues the chain
    reopened.append({"event": "predict"})
    assert verify_audit_log(tmp_path / "a.jsonl")[:2] == (True, 5)


def test_a_tampered_model_is_not_served(model_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    data = bytearray((copy / "model.skops").read_bytes())
    data[100] ^= 0xFF
    (copy / "model.skops").write_bytes(bytes(data))
    code = main(
        [
            "serve",
            "--model-uri",
            str(copy),
            "--state-dir",
            str(tmp_path / "s"),
            "--audit-log",
            str(tmp_path / "a.jsonl"),
        ]
    )
    assert code == 2 and "was changed after it was written" in capsys.readouterr().err
