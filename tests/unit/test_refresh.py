"""The refresh's logic without a pipeline: the champion resolved through its alias, one pass over
current data (inputs, predictions, the champion on labelled rows), the decision and its rules, the
paired comparison of challenger and champion, and the webhook."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from kfp_rai.core.model_dir import model_bytes
from kfp_rai.core.verdict import GateStatus, Verdict
from kfp_rai.policy import Policy
from kfp_rai.production import ModelRegistry, approve, promote
from kfp_rai.refresh import (
    Decision,
    Measured,
    NoChampion,
    PredictionSummary,
    Scored,
    compare_models,
    decide,
    judge_refresh,
    measure_data,
    notify,
    prediction_drift,
    resolve_champion,
    training_window,
)
from kfp_rai.stats.summary import DataSummary
from kfp_rai.training import train_model

SENSITIVE = ["sex", "race"]
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def champion_registry(tmp_path_factory, adult_split):
    """A registry whose production version is a model trained on Adult, with its training summary,
    its predictions at validation and the run's settings stored with it, as the lifecycle stores them."""
    from kfp_rai.core.model_dir import REFERENCE_FILE
    from kfp_rai.production import register_candidate
    from kfp_rai.refresh import reference_summary

    # As the pipeline trains it: on data read back from parquet (a missing category is None, as in every
    # batch a refresh reads), not straight from the CSV (NaN).
    train, test = (pa.Table.from_pandas(d, preserve_index=False).to_pandas() for d in adult_split)
    model, summary = train_model(train, target="income", positive_label=">50K", sensitive_features=SENSITIVE)
    meta = {**asdict(summary), "name": "adult-income", "decision_threshold": 0.5}
    data = model_bytes(model)
    from kfp_rai.core.files import sha256_bytes

    meta["sha256"] = sha256_bytes(data)
    reference = reference_summary(train, columns=list(train.columns))
    predictions = PredictionSummary.of(model.predict_proba(test[list(summary.features)])[:, 1], 0.5)
    card = {"status": "passed", "reason": "every gate passed", "findings": [], "kind": "model_card",
            "subject": {"model_name": "adult-income"}, "model_name": "adult-income", "details": {},
            "intended_use": "tests", "training": {}, "representativeness": {}, "validation": {}, "explanation": {},
            "lineage": {}}  # fmt: skip
    registry = ModelRegistry(str(tmp_path_factory.mktemp("registry")))
    register_candidate(
        registry,
        files={"model.skops": data, REFERENCE_FILE: json.dumps(reference.to_dict()).encode()},
        meta=meta,
        card_text="# card",
        card_json=card,
        human_texts={"policy": "", "collection_plan": "", "reference_population": ""},
        launched_by="trainer",
        settings={"training_data": "bundled:adult", "sensitive_features": SENSITIVE, "test_size": 0.3},
        predictions=json.dumps(predictions.to_dict()).encode(),
    )
    return registry


def test_nothing_is_compared_with_a_model_that_is_not_in_production(champion_registry):
    with pytest.raises(NoChampion, match="no version of adult-income is production yet"):
        resolve_champion(champion_registry, "adult-income")
    candidate = resolve_champion(champion_registry, "adult-income", version="1")
    assert not candidate.in_production and "checked before anyone approved it" in candidate.role
    approve(champion_registry, "adult-income", "1", by="reviewer", note="fine")
    promote(champion_registry, "adult-income", "1", by="reviewer")
    champion = resolve_champion(champion_registry, "adult-income")
    assert champion.in_production and champion.settings["training_data"] == "bundled:adult"
    assert champion.predictions.rows > 0 and champion.reference.rows > 0


@pytest.fixture(scope="module")
def champion(champion_registry):
    state = champion_registry.state("adult-income")
    if "production" not in state.aliases:
        approve(champion_registry, "adult-income", "1", by="reviewer", note="fine")
        promote(champion_registry, "adult-income", "1", by="reviewer")
    return resolve_champion(champion_registry, "adult-income")


def test_one_pass_measures_inputs_predictions_and_the_champion_on_labelled_rows(champion, adult):
    test = pa.Table.from_pandas(adult.sample(6000, random_state=1), preserve_index=False).to_pandas()
    measured = measure_data(test, champion, SENSITIVE)
    assert measured.rows == 6000 and measured.labelled_rows == 6000 and measured.source == "data"
    model = champion.estimator()
    scores = model.predict_proba(test[champion.meta["features"]])[:, 1]
    assert measured.predictions == PredictionSummary.of(scores, 0.5)
    report = judge_refresh(champion, measured, Policy(), now=NOW)
    y = (test["income"] == ">50K").to_numpy()
    assert report.performance.overall["accuracy"] == pytest.approx(accuracy_score(y, scores >= 0.5), abs=1e-12)
    assert report.performance.overall["roc_auc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-3)
    assert {f.attribute for f in report.performance.fairness} == {"sex", "race", "sex × race"}
    # Unlabelled rows count for drift and predictions only; a model input missing is refused.
    unlabelled = measure_data(test.drop(columns=["income"]), champion, SENSITIVE)
    assert unlabelled.labelled_rows == 0 and unlabelled.counts is None
    with pytest.raises(Exception, match="lacks the model's inputs"):
        measure_data(test.drop(columns=["age"]), champion, SENSITIVE)


def test_drift_of_inputs_and_of_predictions_triggers_a_challenger(champion, adult):
    current = adult.sample(6000, random_state=2)
    calm = judge_refresh(champion, measure_data(current, champion, SENSITIVE), Policy(), now=NOW)
    assert "drift" not in calm.decision.triggers
    shifted = current.assign(age=current["age"] + 15)
    report = judge_refresh(champion, measure_data(shifted, champion, SENSITIVE), Policy(), now=NOW)
    assert report.drift is not None and "age" in report.drift.drifted_columns
    assert "drift" in report.decision.triggers and report.decision.retrain
    assert report.decision.training_data == "reference+current"
    rules = {f.rule for f in report.verdict.findings if f.status is GateStatus.WARNING}
    assert "drift.psi_threshold" in rules and "refresh.decision" in rules
    html = report.to_html()
    assert "Prediction drift" in html and "RETRAIN" in html


def _measured(labelled: int, *, features: bool = True) -> Measured:
    counts = None
    if labelled:
        from kfp_rai.stats.groups import GroupCounts

        y = np.zeros(labelled, dtype=np.int64)
        counts = {"<all rows>": GroupCounts.of("<all rows>", np.zeros(labelled), y, y)}
    return Measured("data", "current", max(labelled, 10), DataSummary(0, {}), PredictionSummary.of([0.5], 0.5),
                    counts, (), features)  # fmt: skip


@pytest.mark.parametrize(
    ("triggers", "measured", "policy", "pending", "retrain", "words"),
    [
        ((), _measured(5000), {}, None, False, "nothing triggered"),
        (("drift",), _measured(0), {}, None, False, "holds no labels"),
        (("fairness",), _measured(500), {}, None, False, "only 500 labelled rows"),
        (("drift",), _measured(5000, features=False), {}, None, False, "holds no model inputs"),
        (("drift",), _measured(5000), {"retrain_on": ["fairness"]}, None, False, "names none of them"),
        (("drift",), _measured(5000), {}, ("4", "2026-12-06T06:00:00+00:00"), False, "still awaits a decision"),
        (("drift",), _measured(5000), {}, ("4", "2026-12-04T06:00:00+00:00"), True, "trained on reference+current"),
        (("performance",), _measured(5000), {"training_data": "current"}, None, True, "trained on current"),
    ],
)
def test_the_policy_decides_whether_a_challenger_is_trained(triggers, measured, policy, pending, retrain, words):
    decision = decide(
        triggers,
        measured,
        Policy.from_dict({"refresh": policy}),
        now=NOW,
        pending=pending,
        reference_data="bundled:adult",
    )
    assert isinstance(decision, Decision) and decision.retrain is retrain and words in decision.reason


def test_prediction_drift_needs_a_reference_and_enough_predictions():
    reference = PredictionSummary.of(np.linspace(0, 1, 1000), 0.5)
    (finding,) = prediction_drift(None, reference, psi_threshold=0.2, confidence=0.999, min_rows=100)
    assert finding.status is GateStatus.NOT_JUDGED and "no prediction reference" in finding.message
    (few,) = prediction_drift(reference, PredictionSummary.of([0.9] * 10, 0.5), psi_threshold=0.2,
                              confidence=0.999, min_rows=100)  # fmt: skip
    assert few.status is GateStatus.NOT_JUDGED
    high = PredictionSummary.of(np.full(1000, 0.9), 0.5)
    psi_finding, rate = prediction_drift(reference, high, psi_threshold=0.2, confidence=0.999, min_rows=100)
    assert psi_finding.status is GateStatus.WARNING and rate.status is GateStatus.WARNING
    merged = reference.merge(reference)
    assert merged.rows == 2000 and PredictionSummary.from_dict(merged.to_dict()) == merged


def test_the_paired_comparison_agrees_with_sklearn_and_pairs_the_rows(adult_split, adult_model):
    _, test = adult_split
    model, summary = adult_model
    scores = model.predict_proba(test[list(summary.features)])[:, 1]
    same = compare_models(Scored("a", scores, 0.5), Scored("b", scores, 0.5), test, target="income",
                          positive_label=">50K", sensitive=SENSITIVE, policy=Policy())  # fmt: skip
    assert same.verdict.status is GateStatus.PASSED
    for row in same.comparisons:
        # the same model on the same resampled rows: every paired difference is exactly zero
        assert row.difference == 0 and (row.interval is None or row.interval == (0.0, 0.0)), row
    y = (test["income"] == ">50K").to_numpy()
    accuracy = next(r for r in same.comparisons if r.metric == "accuracy")
    assert accuracy.champion == pytest.approx(accuracy_score(y, scores >= 0.5), abs=1e-12)
    auc = next(r for r in same.comparisons if r.metric == "roc_auc")
    assert auc.champion == pytest.approx(roc_auc_score(y, scores), abs=1e-3)
    worse = np.where(test["sex"] == "Female", scores * 0.5, scores)  # half the women's scores
    report = compare_models(Scored("a", scores, 0.5), Scored("b", worse, 0.5), test, target="income",
                            positive_label=">50K", sensitive=SENSITIVE, policy=Policy())  # fmt: skip
    failed = {(f.rule, f.subject) for f in report.verdict.findings if f.status is GateStatus.FAILED}
    assert ("refresh.non_regression.demographic_parity_ratio", "sex") in failed
    lax = Policy.from_dict({"refresh": {"enforce": False, "exception_reason": "pilot: regressions recorded only"}})
    recorded = compare_models(Scored("a", scores, 0.5), Scored("b", worse, 0.5), test, target="income",
                              positive_label=">50K", sensitive=SENSITIVE, policy=lax)  # fmt: skip
    assert recorded.verdict.status is GateStatus.WARNING
    assert "Challenger against champion" in report.to_html()


def test_the_challenger_trains_on_the_current_rows_and_the_champions(adult):
    current, reference = adult.iloc[:100].assign(extra=1), adult.iloc[100:300]
    rows, meta = training_window([current, reference], [{"source": "cur.parquet"}, {"source": "bundled:adult"}])
    assert len(rows) == 300 and "extra" not in rows.columns and meta["columns_left_out"] == ["extra"]
    assert meta["source"] == "cur.parquet" and [p["rows"] for p in meta["parts"]] == [100, 200]
    only, meta = training_window([current], [{"source": "cur.parquet"}])
    assert len(only) == 100 and meta["window"] == "current"


def test_a_webhook_hears_of_a_challenger_and_a_failing_one_is_a_warning():
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        meta = {"name": "adult-income", "version": "4", "sha256": "ab" * 32, "registry_uri": "/r"}
        status, reason = notify(url, meta, next_step="approve it", why="drift triggered")
        assert status == "passed" and "version 4 awaits a decision" in reason
        assert received == [{"event": "challenger_awaits_decision", "model": "adult-income", "version": "4",
                             "alias": "challenger", "sha256": "ab" * 32, "registry": "/r", "why": "drift triggered",
                             "next_step": "approve it"}]  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert notify(url, meta, next_step="", why="")[0] == "warning"  # nobody listens now: a warning, not a failure
    assert notify("", meta, next_step="", why="")[0] == "not_judged"
    assert notify("ftp://x", meta, next_step="", why="")[0] == "warning"


def test_verdict_is_never_passed_when_something_could_not_be_judged(champion, adult):
    few = adult.sample(50, random_state=3)
    report = judge_refresh(champion, measure_data(few, champion, SENSITIVE), Policy(), now=NOW)
    assert report.verdict.status is GateStatus.NOT_JUDGED  # too few rows: never "no drift"
    assert Verdict.from_dict(report.to_dict()).status is GateStatus.NOT_JUDGED


def test_current_data_in_an_object_store_is_read_as_a_local_file_is(s3, champion, adult):
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from kfp_rai.stats.stream import open_batches

    current = pa.Table.from_pandas(adult.sample(3000, random_state=4), preserve_index=False)
    fs, root = pafs.FileSystem.from_uri(f"s3://mlpipeline/current?{s3}")
    for i in range(3):  # a directory of partitions, and a file to leave out
        with fs.open_output_stream(f"{root}/day={i}/part.parquet") as out:
            pq.write_table(current.slice(i * 1000, 1000), out)
    with fs.open_output_stream(f"{root}/_SUCCESS") as out:
        out.write(b"")
    data = open_batches(f"s3://mlpipeline/current?{s3}")
    assert data.rows == 3000 and data.schema.names == current.schema.names
    remote = measure_data(f"s3://mlpipeline/current?{s3}", champion, SENSITIVE)
    local = measure_data(current, champion, SENSITIVE)
    assert remote.predictions == local.predictions and remote.labelled_rows == 3000


def test_serving_traffic_is_summarized_per_window_without_a_raw_value(champion, adult, tmp_path):
    from kfp_rai.refresh._traffic import TrafficRecorder, merge_windows, read_windows

    key = b"audit-key-for-the-traffic-test-01"
    features = list(champion.meta["features"])
    recorder = TrafficRecorder(champion.reference, features, 0.5, tmp_path, key, champion.meta, window_seconds=3600)
    rows = adult.sample(500, random_state=5)
    instances = [
        {f: (None if v != v else v) for f, v in zip(features, values, strict=True)}
        for values in rows[features].itertuples(index=False)
    ]
    scores = champion.estimator().predict_proba(rows[features])[:, 1]
    recorder.add(instances[:200], scores[:200], [[] for _ in range(200)])
    recorder.add(instances[200:], scores[200:], [["age outside training range [17, 90]"]] * 300)
    path = recorder.close()
    text = path.read_text()
    for column in ("workclass", "occupation"):  # categories are the reference's bins; no request's own value
        assert all(
            str(v) not in text
            for v in set(rows[column].dropna()) - set(champion.reference.columns[column].bins.categories)
        )
    body = json.loads(text)
    assert body["rows"] == 500 and body["alerts"] == {"age: out of range": 300}
    windows = read_windows(tmp_path, key, champion.meta["sha256"])
    inputs, predictions, span = merge_windows(windows)
    assert predictions == PredictionSummary.of(scores, 0.5) and span["windows"] == 1
    # The same counts as a streamed pass over the same rows (the bins are the champion's).
    direct = measure_data(pa.Table.from_pandas(rows, preserve_index=False), champion, SENSITIVE).inputs
    for column in features:
        assert inputs.columns[column].counts.tolist() == direct.columns[column].counts.tolist(), column
    edited = json.loads(text)
    edited["rows"] = 5
    path.write_text(json.dumps(edited))
    with pytest.raises(Exception, match="fails its check with the audit key"):
        read_windows(tmp_path, key, champion.meta["sha256"])
    with pytest.raises(Exception, match="holds no traffic summary of this model version"):
        read_windows(tmp_path / "nowhere", key, champion.meta["sha256"])


def test_late_labels_are_joined_with_the_verified_trail_by_pseudonymized_id(champion, adult, tmp_path):
    from kfp_rai.discovery import pseudonym
    from kfp_rai.errors import IntegrityError
    from kfp_rai.refresh._monitor import model_input
    from kfp_rai.refresh._traffic import late_labels
    from kfp_rai.serving import AuditLog

    audit_key, hmac_key = b"audit-key-for-the-late-labels-test", b"pseudonymization-key-of-serving"
    rows = adult.sample(400, random_state=7).reset_index(drop=True)
    features = list(champion.meta["features"])
    # scored as served: a missing category is None (JSON null), as measure_data reads it
    served = model_input(pa.RecordBatch.from_pandas(rows[features], preserve_index=False), features)
    scores = champion.estimator().predict_proba(served)[:, 1]
    log = AuditLog(tmp_path / "audit.jsonl", key=audit_key, create=True)
    ids = [f"req-{i}" for i in range(len(rows))]
    for start in range(0, 300, 100):  # 300 served by this version, in three batches
        log.append({"event": "predict", "model_sha256": champion.meta["sha256"],
                    "ids": ["hmac:" + pseudonym(i, hmac_key) for i in ids[start : start + 100]],
                    "predictions": [[float(s), "x"] for s in scores[start : start + 100]]})  # fmt: skip
    other = ["hmac:" + pseudonym(i, hmac_key) for i in ids[300:]]  # served by another version: not counted
    log.append({"event": "predict", "model_sha256": "another-version", "ids": other, "predictions": [[0.9, "x"]] * 100})
    log.close()
    labels = rows[["income", "sex"]].rename(columns={"income": "label"}).assign(id=ids)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    model = {**champion.meta}
    counts, matched = late_labels(str(tmp_path / "audit.jsonl"), str(tmp_path / "labels.csv"), model=model,
                                  sensitive=SENSITIVE, audit_key=audit_key, hmac_key=hmac_key)  # fmt: skip
    assert matched == {"labels": 400, "matched": 300, "sensitive": 1}  # race was not provided
    # The same per-group counts as the champion scored on those 300 labelled rows directly.
    direct = measure_data(rows.iloc[:300], champion, SENSITIVE)
    assert counts["sex"].labels == direct.counts["sex"].labels
    assert np.array_equal(counts["sex"].cells, direct.counts["sex"].cells)
    assert np.array_equal(counts["sex"].scores, direct.counts["sex"].scores)
    # Labels keyed with another pseudonymization key match nothing; an edited trail is refused whole.
    assert late_labels(str(tmp_path / "audit.jsonl"), str(tmp_path / "labels.csv"), model=model, sensitive=SENSITIVE,
                       audit_key=audit_key, hmac_key=b"not-the-serving-key-0123")[1]["matched"] == 0  # fmt: skip
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace('"x"', '"y"', 1)
    (tmp_path / "audit.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(IntegrityError, match="does not verify"):
        late_labels(str(tmp_path / "audit.jsonl"), str(tmp_path / "labels.csv"), model=model, sensitive=SENSITIVE,
                    audit_key=audit_key, hmac_key=hmac_key)  # fmt: skip
