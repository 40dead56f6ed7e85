"""The README's refresh walkthrough, end to end: a model in production, serving shifted traffic
(loopback, bounded), a refresh on the traffic summaries (drift, no labels, no challenger), late
labels joined with the audit trail, a labelled batch (a challenger judged against the champion on
the same rows, registered under the challenger alias, a webhook told), a person's decision,
promotion and rollback."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kfp_rai.cli import main
from kfp_rai.core.tables import read_table, write_table

pytestmark = pytest.mark.slow
AUDIT_KEY = "audit-key-for-the-refresh-flow-0123456789"
HMAC_KEY = "pseudonymization-key-for-the-refresh-flow"


def _run_refresh(base, registry, name, *args):
    from kfp_rai.pipelines.run_record import validate_run_record

    out = base / name
    assert main(["run", "refresh", "--model", "adult-income", "--registry", str(registry), "--output", str(out),
                 "--quiet", *args]) == 0  # fmt: skip
    record = json.loads((out / "run.json").read_text())
    validate_run_record(record)
    return record


def test_refresh_on_what_production_sees(drift_run, tmp_path, monkeypatch, capsys):
    from kfp_rai.production import ModelRegistry, read_state
    from kfp_rai.refresh._traffic import TrafficRecorder
    from kfp_rai.serving import AuditLog, ModelService, load_served_model
    from kfp_rai.stats.summary import DataSummary

    monkeypatch.setenv("KFP_RAI_AUDIT_KEY", AUDIT_KEY)
    monkeypatch.setenv("KFP_RAI_HMAC_KEY", HMAC_KEY)
    registry = tmp_path / "registry"
    shutil.copytree(drift_run.registry, registry)
    where = ["--registry", str(registry)]
    # Version 1 goes to production; the lifecycle's own challenger (version 2) is rejected, so no
    # challenger awaits a decision (the cooldown would keep a new one from being trained).
    for command in (
        ["approve", "adult-income", "1", "--by", "Dana Reviewer", "--note", "warnings accepted"],
        ["promote", "adult-income", "1", "--by", "Dana Reviewer"],
        ["reject", "adult-income", "2", "--by", "Dana Reviewer", "--note", "superseded"],
    ):
        assert main(["models", *command, *where]) == 0
    capsys.readouterr()

    # Serve it (in-process, as `kfp-rai serve` builds it) and send shifted traffic with request ids.
    served = load_served_model(str(registry / "adult-income" / "1"))
    traffic = TrafficRecorder(
        DataSummary.from_dict(json.loads(served.reference)), served.meta["features"], 0.5, tmp_path / "traffic",
        AUDIT_KEY.encode(), served.meta,
    )  # fmt: skip
    audit = AuditLog(tmp_path / "audit.jsonl", key=AUDIT_KEY.encode(), create=True)
    service = ModelService(served, audit=audit, state_dir=tmp_path / "state", hmac_key=HMAC_KEY.encode(),
                           traffic=traffic)  # fmt: skip
    batch = read_table("bundled:adult-test").sample(1500, random_state=0)
    features = served.meta["features"]
    for start in range(0, len(batch), 50):
        rows = batch.iloc[start : start + 50]
        instances = [
            {**{f: (None if v != v else v) for f, v in zip(features, values, strict=True)}, "id": f"req-{start + i}"}
            for i, values in enumerate(rows[features].itertuples(index=False))
        ]
        for instance in instances:
            instance["age"] = instance["age"] + 15
        service.predict({"instances": instances})
    service.close()

    # A refresh on what production saw: drift in age, no labels, no challenger.
    seen = _run_refresh(tmp_path, registry, "on-traffic", "--data", str(tmp_path / "traffic"))["stages"]["refresh"]
    assert seen["drift_detected"] and "age" in seen["drifted_columns"]
    assert seen["decision"]["retrain"] is False and "holds no labels" in seen["decision"]["reason"]
    assert read_state(ModelRegistry(str(registry)), "adult-income").aliases.get("challenger") is None

    # Late labels of the served requests: the served model's performance, with no feature value kept.
    labels = batch[["income", "sex", "race"]].rename(columns={"income": "label"})
    labels.assign(id=[f"req-{i}" for i in range(len(batch))]).to_csv(tmp_path / "labels.csv", index=False)
    late = _run_refresh(tmp_path, registry, "late-labels", "--data", str(tmp_path / "traffic"), "--labels",
                        str(tmp_path / "labels.csv"), "--audit-log", str(tmp_path / "audit.jsonl"))  # fmt: skip
    report = json.loads((tmp_path / "late-labels" / "refresh" / "refresh.json").read_text())
    assert report["window"]["labelled_rows"] == 1500 and report["performance"]["rows"] == 1500
    assert late["stages"]["refresh"]["decision"]["retrain"] is False  # labels, but no rows to train on

    # A labelled batch of the shifted data: a challenger, judged against the champion on the same rows.
    labelled = read_table("bundled:adult-test")
    write_table(labelled.assign(age=labelled["age"] + 15), tmp_path / "drifted.parquet")
    heard: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            heard.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        record = _run_refresh(tmp_path, registry, "labelled", "--data", str(tmp_path / "drifted.parquet"),
                              "--notify-url", f"http://127.0.0.1:{hook.server_address[1]}/hook")  # fmt: skip
    finally:
        hook.shutdown()
        hook.server_close()
    refresh = record["stages"]["refresh"]
    assert refresh["decision"]["retrain"] and refresh["retrained"], refresh["decision"]
    assert record["outcome"] == "registered" and record["stages"]["production"]["version"] == "3"
    assert refresh["comparison"]["status"] in ("passed", "warning")
    comparison = json.loads((tmp_path / "labelled" / "refresh" / "comparison.json").read_text())
    assert comparison["champion"]["version"] == "1" and comparison["rows"] > 1000  # the same held-out rows
    assert {r["subject"] for r in comparison["comparisons"]} >= {
        "overall",
        "sex",
        "race",
    }  # intersections: not gated here
    assert heard and heard[0]["version"] == "3" and heard[0]["event"] == "challenger_awaits_decision"
    state = read_state(ModelRegistry(str(registry)), "adult-income")
    assert state.aliases == {"production": "1", "challenger": "3"} and state.versions["3"].state == "candidate"
    card = (registry / "adult-income" / "3" / "model_card.md").read_text()
    assert "## Why this version exists" in card and "production: adult-income version 1" in card

    # A person decides: approve, promote (the challenger alias is cleared), and roll back.
    for command in (
        ["approve", "adult-income", "3", "--by", "Lee Validator", "--note", "better on what production sees"],
        ["promote", "adult-income", "3", "--by", "Lee Validator"],
        ["rollback", "adult-income", "--by", "Ops On-Call", "--note", "incident 17"],
    ):
        assert main(["models", *command, *where]) == 0
    state = read_state(ModelRegistry(str(registry)), "adult-income")
    assert state.aliases == {"production": "1"} and state.versions["3"].state == "approved"
