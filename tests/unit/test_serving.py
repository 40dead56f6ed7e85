"""The KServe model server on loopback: access, bounds, validation, alerts, reason codes, the
keyed audit trail, the kill switch, safe state. Every hostile request of the serving issue has a
test here, sent over a real socket to the real server."""

import contextlib
import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path

import pytest

from kfp_rai.cli import main
from kfp_rai.core.model_dir import model_bytes
from kfp_rai.core.verdict import GateStatus, Verdict
from kfp_rai.discovery import pseudonym
from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.production import ModelRegistry, approve
from kfp_rai.serving import AuditLog, ModelService, load_served_model, safe_state_dir, verify_audit_log
from kfp_rai.serving._gate import Limits, Tokens
from kfp_rai.serving._kserve import Server, start_in_thread
from kfp_rai.training import train_model

SENSITIVE = ["sex", "race"]
KEY = b"audit-key-for-tests-0123456789abcdef"
TOKEN, ADMIN = "predict-token-0123456789", "admin-token-0123456789ab"
NAME = "adult-income"


@pytest.fixture(scope="module")
def trained(adult):
    return train_model(
        adult.sample(3000, random_state=0), target="income", positive_label=">50K", sensitive_features=SENSITIVE
    )


def _register(root, trained, verdict):
    model, summary = trained
    registry = ModelRegistry(str(root))
    meta = {**asdict(summary), "decision_threshold": 0.5}
    return registry.register(
        NAME, model=model_bytes(model), model_card="# card", metadata=meta, verdict=verdict, launched_by="trainer"
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, trained):
    """A registry version whose gates passed, approved by a person: servable."""
    root = tmp_path_factory.mktemp("registry")
    entry = _register(root, trained, Verdict(GateStatus.PASSED, "all gates passed"))
    approve(ModelRegistry(str(root)), NAME, entry.version, by="reviewer", note="fine")
    return entry.uri


@pytest.fixture(scope="module")
def blocked_dir(tmp_path_factory, trained):
    """A registry version the production gate blocked."""
    verdict = Verdict(GateStatus.FAILED, "fairness: demographic parity difference 0.19 > 0.10")
    return _register(tmp_path_factory.mktemp("registry"), trained, verdict).uri


class Running:
    def __init__(self, port, tmp, service, server):
        self.url, self.tmp, self.service, self.server = f"http://127.0.0.1:{port}", tmp, service, server
        self.port = port

    @property
    def log(self):
        return self.tmp / "audit.jsonl"

    def events(self):
        """The events after the log's creation record and the server's start."""
        events = [json.loads(line)["event"] for line in self.log.read_text().splitlines()]
        assert events[:2] == ["audit_log_created", "start"]
        return events[2:]

    def records(self):
        return [json.loads(line) for line in self.log.read_text().splitlines()]


BOTH_TOKENS = Tokens(TOKEN, ADMIN)


def _start(model_dir, tmp, limits=None, tokens=BOTH_TOKENS):
    audit = AuditLog(tmp / "audit.jsonl", key=KEY, create=True)
    service = ModelService(
        load_served_model(str(model_dir)), audit=audit, state_dir=tmp / "state", hmac_key=b"test-key-0123456789"
    )
    server = Server(service, host="127.0.0.1", port=0, tokens=tokens, limits=limits)
    thread = start_in_thread(server)
    port = server._server.servers[0].sockets[0].getsockname()[1]
    return Running(port, tmp, service, server), thread


@pytest.fixture
def server(model_dir, tmp_path):
    running, thread = _start(model_dir, tmp_path, limits=Limits(body_seconds=1.0))
    yield running
    running.server.stop()
    thread.join(15)
    running.service.close()


def _call(url, body=None, raw=None, token=TOKEN, method=None):
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _raw(port, head, body=b"", *, wait=10.0):
    """Send bytes as they are (no client library would send these) and return the status code
    (None when the server closed the connection without an answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head + body)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else None


def _head(port, length, path=f"/v1/models/{NAME}:predict", token=TOKEN):
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _instance(adult, **changes):
    row = adult.drop(columns=["income", "sex", "race"]).iloc[0].to_dict()
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    return {**row, **changes}


def _v2(instances):
    names = list(instances[0])
    return {
        "inputs": [
            {
                "name": f,
                "shape": [len(instances)],
                "datatype": "BYTES" if isinstance(instances[0][f], str) else "FP64",
                "data": [i[f] for i in instances],
            }
            for f in names
        ]
    }


def _wait_for(running, expected_tail, seconds=10):
    deadline = time.monotonic() + seconds
    while running.events()[-len(expected_tail) :] != expected_tail:
        assert time.monotonic() < deadline, running.events()
        time.sleep(0.05)


def test_v1_predicts_with_alerts_and_audits_without_raw_values(server, adult):
    predict = f"{server.url}/v1/models/{NAME}:predict"
    assert _call(f"{server.url}/v2/health/live", token=None)[0] == 200
    assert _call(f"{server.url}/v2/health/ready", token=None) == (200, {"ready": True})
    status, body = _call(
        predict, {"instances": [_instance(adult, id="customer-42"), _instance(adult, age=140, workclass="Astronaut")]}
    )
    assert status == 200 and body["model_version"] == "1"
    first, second = body["predictions"]
    assert (
        0 <= first["probability"] <= 1 and first["label"] in {">50K", "<=50K"} and first["alerts"] == []
    )  # the data's words
    assert second["alerts"] == ["age outside training range [17, 90]", "workclass: category not seen in training"]
    assert "reason_codes" not in first
    log = server.log.read_text()
    assert "customer-42" not in log and "Astronaut" not in log
    # The audit log carries the pipeline's pseudonym for the id, so the two can be joined.
    assert "hmac:" + pseudonym("customer-42", b"test-key-0123456789") in log
    record = server.records()[-1]
    assert record["event"] == "predict" and record["mac"] == body["audit"] and record["protocol"] == "v1"
    # The request is fingerprinted with the audit key: an unkeyed hash of it could be brute-forced.
    assert len(record["request_hmac"]) == 64 and "request_sha256" not in record
    assert record["model_sha256"] == server.service.meta["sha256"] and record["model_version"] == "1"


def test_v2_open_inference_protocol_and_reason_codes(server, adult):
    rows = [_instance(adult), _instance(adult, age=60, **{"capital-gain": 15000})]
    status, body = _call(f"{server.url}/v2/models/{NAME}/infer", {**_v2(rows), "id": "r1"})
    assert status == 200 and body["model_name"] == NAME and body["id"] == "r1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert set(outputs) == {"probability", "label", "alerts"}
    assert outputs["probability"]["datatype"] == "FP64" and outputs["probability"]["shape"] == [2]
    v1 = _call(f"{server.url}/v1/models/{NAME}:predict", {"instances": rows})[1]["predictions"]
    assert outputs["probability"]["data"] == [p["probability"] for p in v1]  # one model behind both protocols
    status, body = _call(
        f"{server.url}/v1/models/{NAME}:predict", {"instances": rows, "parameters": {"reason_codes": True}}
    )
    codes = body["predictions"][1]["reason_codes"]
    assert len(codes) == 3 and {c["direction"] for c in codes} <= {"raises", "lowers"}
    assert all(c["feature"] in server.service.features for c in codes)
    assert abs(codes[0]["contribution"]) >= abs(codes[-1]["contribution"])  # the strongest first
    v2 = _call(f"{server.url}/v2/models/{NAME}/infer", {**_v2(rows), "parameters": {"reason_codes": True}})[1]
    assert json.loads(next(o for o in v2["outputs"] if o["name"] == "reason_codes")["data"][1]) == codes
    # V2 shape problems are named, recorded and never echo a value.
    bad = _v2(rows)
    bad["inputs"] = [i for i in bad["inputs"] if i["name"] != "age"]
    status, body = _call(f"{server.url}/v2/models/{NAME}/infer", bad)
    assert status == 400 and "lacks inputs ['age']" in body["error"]
    assert server.events() == ["predict", "predict", "predict", "predict", "rejected"]
    assert [r["protocol"] for r in server.records()[2:]] == ["v2", "v1", "v1", "v2", "v2"]


def test_a_body_sent_without_a_json_content_type_says_which_header_to_send(server, adult):
    # what `curl -d @file` sends without -H 'Content-Type: application/json'
    request = urllib.request.Request(
        f"{server.url}/v1/models/{NAME}:predict",
        data=json.dumps({"instances": [_instance(adult)]}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400
    said = json.dumps(json.loads(info.value.read()))
    assert "application/x-www-form-urlencoded" in said and "Content-Type: application/json" in said
    assert server.records()[-1]["event"] == "rejected"  # recorded like every rejection


def test_the_readme_example_requests_are_answered_as_written(server):
    examples = Path(__file__).parents[2] / "examples" / "requests"
    status, body = _call(f"{server.url}/v1/models/{NAME}:predict", raw=(examples / "v1.json").read_bytes())
    assert status == 200 and len(body["predictions"][0]["reason_codes"]) == 3
    status, body = _call(f"{server.url}/v2/models/{NAME}/infer", raw=(examples / "v2.json").read_bytes())
    assert status == 200 and body["id"] == "request-1"
    assert {o["name"] for o in body["outputs"]} == {"probability", "label", "alerts"}


def test_concurrent_requests_are_batched_yet_judged_answered_and_audited_one_by_one(server, adult):
    from concurrent.futures import ThreadPoolExecutor

    predict = f"{server.url}/v1/models/{NAME}:predict"
    good = [{"instances": [_instance(adult, age=20 + i)]} for i in range(30)]
    bad = [{"instances": [_instance(adult, age="old")]} for _ in range(3)]
    alone = {body["instances"][0]["age"]: _call(predict, body)[1]["predictions"] for body in good[:3]}
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda body: _call(predict, body), good + bad))
    assert [a[0] for a in answers] == [200] * 30 + [400] * 3  # a bad request fails alone
    for body, (_, answer) in zip(good[:3], answers[:3], strict=True):
        assert answer["predictions"] == alone[body["instances"][0]["age"]]  # batched == scored alone
    records = server.records()
    predicts = [r for r in records if r["event"] == "predict"]
    assert len(predicts) == 33 and len({r["mac"] for r in predicts}) == 33
    assert sorted(a[1]["audit"] for a in answers[:30]) == sorted(r["mac"] for r in predicts[3:])
    assert [r["event"] for r in records].count("rejected") == 3
    assert verify_audit_log(server.log, KEY).ok


def test_every_rejection_is_recorded_and_no_value_is_echoed(server, adult):
    predict = f"{server.url}/v1/models/{NAME}:predict"
    missing = _instance(adult)
    del missing["age"]
    email = "jane.doe@example.com"
    for payload, fragment in [
        ({"rows": []}, '{"instances"'),
        ({"instances": [missing]}, "lacks features ['age']"),
        ({"instances": [_instance(adult, age=email)]}, "'age' must be a number, got text"),
        ({"instances": []}, "between 1 and"),
    ]:
        status, body = _call(predict, payload)
        assert status == 400 and fragment in body["error"] and email not in body["error"]
    assert _call(predict, raw=b"{not json")[0] == 400
    assert _call(predict, {"instances": [_instance(adult, age=10**400)]})[0] == 400  # past the JSON parser's range
    assert _call(predict, raw=b"[" * 100_000)[0] == 400  # nested past the parser's depth
    assert _call(predict, raw=b'{"instances": [{"age": ' + b"9" * 5000 + b"}]}")[0] == 400  # 5000-digit int
    assert _call(f"{server.url}/v2/models/{NAME}/infer", {"inputs": "x"})[0] == 422
    assert _call(f"{server.url}/v2/models/{NAME}/infer", {"inputs": [{"name": email}]})[1]["error"].count(email) == 0
    assert _call(f"{server.url}/v1/models/nosuchmodel:predict", {"instances": []})[0] == 404
    assert server.events() == ["rejected"] * 4 + ["malformed"] * 7, str(
        [(r.get("why"), r.get("status")) for r in server.records()[6:]]
    )
    assert email not in server.log.read_text()


def test_only_token_holders_predict_and_only_the_admin_token_switches(server, adult):
    predict = f"{server.url}/v1/models/{NAME}:predict"
    body = {"instances": [_instance(adult)]}
    assert _call(predict, body, token=None)[0] == 401
    assert _call(predict, body, token="wrong-token-0123456789")[0] == 401
    assert _call(predict, body, token=ADMIN)[0] == 401  # the admin token is not a serving token
    assert _call(f"{server.url}/kfp-rai/v1/disable", {"reason": "x"}, token=TOKEN)[0] == 403
    assert _call(f"{server.url}/kfp-rai/v1/model", token=None)[0] == 403
    assert _call(f"{server.url}/v1/models/{NAME}", token=None)[0] == 401  # model metadata too
    assert urllib.request.urlopen(f"{server.url}/metrics", timeout=10).status == 200  # Prometheus needs no token
    assert server.events() == ["unauthorized"] * 6
    assert TOKEN not in server.log.read_text() and "wrong-token" not in server.log.read_text()


def test_bodies_are_bounded_in_size_and_time_by_the_server(server):
    port = server.port
    assert _raw(port, _head(port, -1), b"{}") == 400  # a negative length: refused by the HTTP parser
    assert _raw(port, _head(port, "abc"), b"{}") == 400
    assert _raw(port, _head(port, 3 << 20), b"{" * 4096) == 413  # announced over the cap: not read
    chunked = (
        f"POST /v1/models/{NAME}:predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b"x" * (1 << 20)
    assert _raw(port, chunked, b"%x\r\n" % len(piece) + piece + b"\r\n" + b"%x\r\n" % 9 + b"x" * 9 + b"\r\n") == 413
    started = time.monotonic()
    assert _raw(port, _head(port, 100), b'{"instances"') == 408  # sends less than it announced
    assert time.monotonic() - started < 5
    _wait_for(server, ["malformed", "malformed", "malformed", "malformed", "malformed"])
    whys = [r.get("why") for r in server.records()[2:]]
    assert whys.count("invalid HTTP (request line or headers)") == 2 and "the body is too large" in whys
    assert whys[-1] == "the body did not arrive in time"
    assert _call(f"{server.url}/v2/health/ready", token=None)[0] == 200  # and the server is still up


def test_headers_are_bounded_under_the_parser_in_use(server, adult):
    import resource

    port = server.port
    body = json.dumps({"instances": [_instance(adult)]}).encode()
    head = _head(port, len(body))
    # One header of 64 MiB: refused once 16 KiB arrived (431), never buffered whole.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.replace(b"\r\n\r\n", b"\r\nX-Big: ", 1))
        answer = b""
        with contextlib.suppress(ConnectionResetError, BrokenPipeError, TimeoutError):
            for _ in range(4096):  # 64 MiB in 16 KiB pieces, until the server closes
                sock.sendall(b"a" * 16384)
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 ") and b"request headers too large" in answer
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 32 * 1024  # KiB: no 64 MiB buffer
    # 200 small headers: refused by count.
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    assert _raw(port, head.replace(b"\r\n\r\n", b"\r\n" + many + b"\r\n", 1), body) == 431
    # A request with a large body and small headers in one read is not mistaken for large headers,
    # and a keep-alive connection serves request after request.
    big = json.dumps({"instances": [_instance(adult)] * 300}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(3):
            sock.sendall(_head(port, len(big)) + big)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            assert data.startswith(b"HTTP/1.1 200 "), data[:80]
            length = int(next(x for x in data.split(b"\r\n") if x.lower().startswith(b"content-length")).split(b":")[1])
            rest = data.split(b"\r\n\r\n", 1)[1]
            while len(rest) < length:
                rest += sock.recv(65536)
    # The rest of a body arriving in a later read, one that ends the message, is body, not headers.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_head(port, len(big)) + big[:10])
        time.sleep(0.2)
        sock.sendall(big[10:])
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    deadline = time.monotonic() + 10
    while server.events().count("predict") < 4:
        assert time.monotonic() < deadline, server.events()
        time.sleep(0.05)
    refused = [r for r in server.records() if r["event"] == "malformed"]
    assert [(r["status"], r["why"]) for r in refused] == [(431, "request headers too large")] * 2
    assert _call(f"{server.url}/v2/health/ready", token=None)[0] == 200


def test_kill_switch_takes_effect_at_once_and_operator_actions_are_recorded(server, adult, capsys):
    predict = f"{server.url}/v1/models/{NAME}:predict"
    state = str(server.tmp / "state")
    assert main(["disable", "--state-dir", state, "--reason", "bias incident 17"]) == 0
    assert "a running server uses" in capsys.readouterr().out
    status, body = _call(predict, {"instances": [_instance(adult)]})
    assert status == 503 and "bias incident 17" in body["error"]
    assert _call(f"{server.url}/v2/models/{NAME}/infer", _v2([_instance(adult)]))[0] == 503
    assert main(["enable", "--state-dir", state]) == 0
    assert _call(predict, {"instances": [_instance(adult)]})[0] == 200
    assert server.events() == ["operator_disabled", "refused", "refused", "operator_enabled", "predict"]
    disabled = server.records()[2]
    # the switch's fields under their own name; the record's seq and time are the log's
    assert disabled["switch"]["reason"] == "bias incident 17" and disabled["switch"]["seq"] == 1
    assert [r["seq"] for r in server.records()] == list(range(1, len(server.records()) + 1))
    # The same switch over HTTP, with the admin token; a reason is required.
    assert _call(f"{server.url}/kfp-rai/v1/disable", {}, token=ADMIN)[0] == 400
    assert _call(f"{server.url}/kfp-rai/v1/disable", {"reason": "rollback drill"}, token=ADMIN) == (
        200,
        {"enabled": False},
    )
    assert _call(predict, {"instances": [_instance(adult)]})[1]["error"] == "model disabled: rollback drill"
    status, body = _call(f"{server.url}/kfp-rai/v1/status", token=ADMIN)
    assert status == 200 and body["enabled"] is False and body["reason"] == "rollback drill"
    assert _call(f"{server.url}/kfp-rai/v1/enable", {}, token=ADMIN) == (200, {"enabled": True})
    assert server.events()[-3:] == ["operator_disabled", "refused", "operator_enabled"]
    actions = [r for r in server.records() if r["event"].startswith("operator_")]
    assert actions[-2]["switch"]["reason"] == "rollback drill" and actions[-2]["switch"]["by"] == "admin token (HTTP)"
    assert verify_audit_log(server.log, KEY).ok


def test_operator_actions_are_recorded_without_waiting_for_a_request(server):
    state = str(server.tmp / "state")
    assert main(["disable", "--state-dir", state, "--reason", "quiet switch-off"]) == 0
    assert main(["enable", "--state-dir", state]) == 0
    _wait_for(server, ["operator_disabled", "operator_enabled"])


def test_a_corrupt_switch_journal_fails_closed_until_an_operator_acts(server, adult):
    predict = f"{server.url}/v1/models/{NAME}:predict"
    with open(server.tmp / "state" / "operator.jsonl", "ab") as fh:
        fh.write(b"{broken")
    status, body = _call(predict, {"instances": [_instance(adult)]})
    assert status == 503 and "unreadable" in body["error"]  # an answer, never a dropped connection
    assert main(["enable", "--state-dir", str(server.tmp / "state")]) == 0
    assert _call(predict, {"instances": [_instance(adult)]})[0] == 200
    assert "operator_journal_unreadable" in server.events()


def test_unusual_prediction_rates_raise_an_alert(server, adult):
    service = server.service
    service.rates.expected = 0.9  # the model was registered predicting 90% positive; it now says ~0%
    rows = [_instance(adult)] * 100
    for _ in range(2):
        assert _call(f"{server.url}/v1/models/{NAME}:predict", {"instances": rows})[0] == 200
    alert = next(r for r in server.records() if r["event"] == "rate_alert")
    assert alert["expected"] == 0.9 and alert["positive_rate"] < 0.1 and alert["window"] >= 100
    assert "rate_alert" in server.events() and server.events().count("rate_alert") == 1  # once, not per request


def test_metrics_count_predictions_rejections_and_alerts_by_model_version(server, adult):
    predict = f"{server.url}/v1/models/{NAME}:predict"
    _call(predict, {"instances": [_instance(adult), _instance(adult, workclass="Astronaut")]})
    _call(predict, {"instances": []})
    _call(predict, {"instances": [_instance(adult)]}, token=None)
    text = urllib.request.urlopen(f"{server.url}/metrics", timeout=10).read().decode()

    def value(metric, **labels):
        want = {"model": NAME, "version": "1", **labels}
        for line in text.splitlines():
            if line.startswith(metric + "{") and all(f'{k}="{v}"' in line for k, v in want.items()):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{metric} {want} not in /metrics")

    assert value("kfp_rai_predictions_total") >= 2
    assert value("kfp_rai_rejections_total", reason="schema") >= 1
    assert value("kfp_rai_rejections_total", reason="unauthorized") >= 1
    assert value("kfp_rai_input_alerts_total", kind="unseen_category") >= 1
    assert "request_predict_seconds" in text  # KServe's own latency histograms are there too


def test_a_blocked_or_unregistered_model_is_refused(blocked_dir, model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KFP_RAI_AUDIT_KEY", KEY.decode())
    monkeypatch.setenv("KFP_RAI_SERVING_TOKEN", TOKEN)
    args = ["serve", "--state-dir", str(tmp_path / "s"), "--new-audit-log", "--port", "0"]
    assert main([*args, "--model-uri", str(blocked_dir)]) == 2
    err = capsys.readouterr().err  # nobody may approve a blocked version, so its registry stops it first
    assert "its registry records no approval of it" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(InvalidParameterError, match="is not eligible"):
        approve(ModelRegistry(str(Path(blocked_dir).parents[1])), NAME, "1", by="reviewer", note="x")
    assert main([*args, "--model-uri", str(blocked_dir), "--allow-unapproved"]) == 2
    err = capsys.readouterr().err
    assert "its gates did not let it through (failed: fairness: demographic parity difference" in err
    assert "--allow-unregistered" in err and len(err.strip().splitlines()) == 1
    loose = tmp_path / "loose"
    shutil.copytree(model_dir, loose)
    (loose / "model_card.md").write_text("# a different card")
    assert main([*args, "--model-uri", str(loose)]) == 2
    assert "fails its signature check" in capsys.readouterr().err  # the card is signed with the rest
    assert not (tmp_path / "s" / "audit").exists()  # nothing was started, nothing written


def test_serve_needs_a_token_unless_opened_for_development(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KFP_RAI_AUDIT_KEY", KEY.decode())
    monkeypatch.delenv("KFP_RAI_SERVING_TOKEN", raising=False)
    monkeypatch.delenv("KFP_RAI_SERVING_TOKEN_FILE", raising=False)
    args = ["serve", "--model-uri", str(model_dir), "--state-dir", str(tmp_path / "s"), "--port", "0"]
    assert main(args) == 2
    assert "predictions need a bearer token" in capsys.readouterr().err
    monkeypatch.setenv("KFP_RAI_SERVING_TOKEN", "short")
    assert main(args) == 2
    assert "fewer than 16" in capsys.readouterr().err
    monkeypatch.setenv("KFP_RAI_SERVING_TOKEN", TOKEN)
    monkeypatch.setenv("KFP_RAI_ADMIN_TOKEN", TOKEN)
    assert main(args) == 2
    assert "the admin token must differ" in capsys.readouterr().err


def test_the_server_works_without_any_admin_token_and_the_switch_stays_on_disk(model_dir, tmp_path, adult):
    running, thread = _start(model_dir, tmp_path, tokens=Tokens(None, None))
    try:
        assert _call(f"{running.url}/v1/models/{NAME}:predict", {"instances": [_instance(adult)]}, token=None)[0] == 200
        assert _call(f"{running.url}/kfp-rai/v1/disable", {"reason": "x"}, token=None)[0] == 403
    finally:
        running.server.stop()
        thread.join(15)
        running.service.close()


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
        forged.append(json.dumps(record, sort_keys=True, separators=(",", ":")))  # stored as the writer stores
    _tamper(path, forged)
    check = verify_audit_log(path, KEY)
    assert not check.ok and "written without the audit key" in check.message
    assert not verify_audit_log(tmp_path / "a.jsonl", b"another-key-0123456789abcdef").ok


def test_the_mac_covers_the_stored_bytes_not_a_parse_of_them(tmp_path):
    path, _ = _chain(tmp_path)
    lines = path.read_text().splitlines()
    third = lines[2]
    # A forged first value of a duplicated key: json.loads keeps the genuine last one, other readers the first.
    _tamper(path, [*lines[:2], third.replace('{"event"', '{"n":99,"event"', 1), *lines[3:]])
    check = verify_audit_log(path, KEY)
    assert not check.ok and "line 3 is not stored as written" in check.message
    for changed in (third.replace(",", ", ", 1), third.replace('"n":1', '"n":1e0'), third + " "):
        _tamper(path, [*lines[:2], changed, *lines[3:]])
        assert "line 3 is not stored as written" in verify_audit_log(path, KEY).message, changed
    _tamper(path, lines)
    assert verify_audit_log(path, KEY).ok


def test_another_genuine_log_swapped_in_is_refused_by_the_index(tmp_path):
    index = tmp_path / "state" / "checkpoints" / "audit-logs.json"
    a = AuditLog(tmp_path / "a.jsonl", key=KEY, create=True, index=index)
    a.append({"event": "predict", "n": 1})
    a.close()
    b = AuditLog(tmp_path / "b.jsonl", key=KEY, create=True)  # same key, not in the index
    b.append({"event": "predict", "n": 2})
    b.close()
    assert "as the index records" in verify_audit_log(tmp_path / "a.jsonl", KEY, index=index).message
    shutil.copy(tmp_path / "b.jsonl", tmp_path / "a.jsonl")  # b names its own checkpoints, which match
    assert verify_audit_log(tmp_path / "a.jsonl", KEY).ok  # without the index nothing tells them apart
    check = verify_audit_log(tmp_path / "a.jsonl", KEY, index=index)
    assert not check.ok and "not the log started here" in check.message
    with pytest.raises(IntegrityError, match="not the log started here"):
        AuditLog(tmp_path / "a.jsonl", key=KEY, index=index)
    # The index itself is keyed: edited, it is refused, never silently trusted.
    text = index.read_text()
    index.write_text(text.replace('"log_id":"', '"log_id":"0', 1))
    check = verify_audit_log(tmp_path / "a.jsonl", KEY, index=index)
    assert not check.ok and "index" in check.message and "altered" in check.message


def test_the_writer_locks_the_file_itself_not_its_name(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl", key=KEY, create=True)
    os.link(tmp_path / "a.jsonl", tmp_path / "hard.jsonl")
    os.symlink(tmp_path / "a.jsonl", tmp_path / "soft.jsonl")
    with pytest.raises(IntegrityError, match="in use by another server"):
        AuditLog(tmp_path / "hard.jsonl", key=KEY)  # another name of the same file
    with pytest.raises(IntegrityError, match="is a symbolic link"):
        AuditLog(tmp_path / "soft.jsonl", key=KEY)
    # A file renamed into the log's place receives nothing: the writer keeps the file it locked.
    os.rename(tmp_path / "a.jsonl", tmp_path / "kept.jsonl")
    (tmp_path / "a.jsonl").write_text("")
    log.append({"event": "predict", "n": 1})
    log.close()
    assert (tmp_path / "a.jsonl").read_text() == "" and '"n":1' in (tmp_path / "kept.jsonl").read_text()
    with pytest.raises(ValueError, match="the log's own fields"):
        AuditLog(tmp_path / "c.jsonl", key=KEY, create=True).append({"event": "x", "seq": 7})


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
    monkeypatch.setenv("KFP_RAI_SERVING_TOKEN", TOKEN)
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
    monkeypatch.setenv("KFP_RAI_SERVING_TOKEN", TOKEN)
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


def test_a_mitigated_model_is_served_as_validated_with_the_sensitive_inputs_it_needs(adult, tmp_path):
    """ThresholdOptimizer's group thresholds take sex and race as inputs: the server asks for them
    and answers exactly what the model in the registry computes (the generic sklearn path)."""
    from kfp_rai.policy import TrainingPolicy

    policy = TrainingPolicy(mitigation="threshold_optimizer", max_iter=30)
    trained = train_model(adult, target="income", positive_label=">50K", sensitive_features=SENSITIVE, policy=policy)
    entry = _register(tmp_path / "registry", trained, Verdict(GateStatus.PASSED, "all gates passed"))
    running, _ = _start(entry.uri, tmp_path)
    try:
        rows = adult.drop(columns=["income"]).iloc[:5]
        instances = [
            {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows.to_dict("records")
        ]
        status, body = _call(f"{running.url}/v1/models/{NAME}:predict", {"instances": instances})
        assert status == 200
        expected = trained[0].predict_proba(rows[list(trained[1].features)])[:, 1]
        assert [p["probability"] for p in body["predictions"]] == pytest.approx(expected.tolist(), abs=1e-9)
        without_sex = [{k: v for k, v in i.items() if k != "sex"} for i in instances[:1]]
        assert _call(f"{running.url}/v1/models/{NAME}:predict", {"instances": without_sex})[0] == 400
    finally:
        running.server.stop()


def test_a_version_swapped_between_the_check_and_the_load_is_not_served(model_dir, tmp_path, capsys, monkeypatch):
    """The approval is checked on the registry's version, the model loaded from the directory: if the
    directory changes in between, what was loaded must still be what was approved."""
    import dataclasses

    import kfp_rai.serving as serving

    monkeypatch.setenv("KFP_RAI_AUDIT_KEY", KEY.decode())
    monkeypatch.setenv("KFP_RAI_SERVING_TOKEN", TOKEN)
    original = serving.load_served_model

    def swapped(uri):
        served = original(uri)
        return dataclasses.replace(served, meta={**served.meta, "version": "2", "sha256": "f" * 64})

    monkeypatch.setattr(serving, "load_served_model", swapped)
    args = ["serve", "--model-uri", str(model_dir), "--state-dir", str(tmp_path / "s"), "--port", "0"]
    assert main([*args, "--new-audit-log"]) == 2
    err = capsys.readouterr().err
    assert "not version 1 that was approved" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s" / "audit").exists()


def test_the_readme_serving_steps_leave_a_log_that_verifies_every_time(model_dir, tmp_path):
    """Start, predict, disable (CLI), enable (endpoint), disable (endpoint), enable (CLI), SIGTERM,
    restart on the same log, predict, SIGTERM; `kfp-rai audit verify` after each stop."""
    import signal
    import subprocess
    import sys

    kfp_rai = str(Path(sys.executable).with_name("kfp-rai"))
    state = str(tmp_path / "state")
    env = {**os.environ, "KFP_RAI_AUDIT_KEY": KEY.decode(), "KFP_RAI_SERVING_TOKEN": TOKEN,
           "KFP_RAI_ADMIN_TOKEN": ADMIN, "KFP_RAI_STATE_DIR": state}  # fmt: skip
    body = json.loads((Path(__file__).parents[2] / "examples" / "requests" / "v1.json").read_text())
    log = Path(state) / "audit" / "audit.jsonl"

    def cli(*args):
        done = subprocess.run([kfp_rai, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    for extra in (["--new-audit-log"], []):
        proc = subprocess.Popen(
            [kfp_rai, "serve", "--model-uri", str(model_dir), "--port", "0", *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            url = proc.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
            assert _call(f"{url}/v1/models/{NAME}:predict", body)[0] == 200
            cli("disable", "--reason", "incident 17")
            assert _call(f"{url}/v1/models/{NAME}:predict", body)[0] == 503
            assert _call(f"{url}/kfp-rai/v1/enable", {}, token=ADMIN)[0] == 200
            assert _call(f"{url}/kfp-rai/v1/disable", {"reason": "drill"}, token=ADMIN)[0] == 200
            cli("enable")
            assert _call(f"{url}/v1/models/{NAME}:predict", body)[0] == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
        assert proc.returncode == 0
        out = cli("audit", "verify", str(log))
        assert "chain intact" in out and "as the index records" in out  # and it is the log started here
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    switched = [r["switch"]["action"] for r in records if r["event"].startswith("operator_")]
    assert switched == ["disable", "enable", "disable", "enable"] * 2
