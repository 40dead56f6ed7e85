"""Each component through kfp.local: real artifacts, metadata and gate outputs.

kfp.local runs a lone component only if it takes no input artifacts, so components that consume
artifacts are exercised inside small test pipelines that return the outputs under test.
"""

import json
from pathlib import Path
from typing import NamedTuple

import pytest
from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Markdown, Metrics, Model

from kfp_rai.components import (
    check_representativeness,
    detect_drift,
    explain_model,
    load_dataset,
    register_model,
    split_dataset,
    stop_blocked_model,
    train_model,
    validate_model,
    write_datasheet,
    write_model_card,
)
from kfp_rai.core.files import sha256_file

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SENSITIVE = ["sex", "race"]
ARGS = {"target": "income", "positive_label": ">50K", "sensitive_features": SENSITIVE}


_D = NamedTuple(
    "D",
    train=Dataset,
    test=Dataset,
    status=str,
    passed=bool,
    reason=str,
    report=Artifact,
    html=HTML,
    metrics=Metrics,
    discovery_status=str,
    discovery_reason=str,
    datasheet=Artifact,
    datasheet_md=Markdown,
)


@dsl.pipeline
def discovery_chain(source: str, policy: str, plan: str) -> _D:
    loaded = load_dataset(source=source, target="income", positive_label=">50K", sensitive_features=["sex", "race"])
    split = split_dataset(dataset=loaded.outputs["dataset"], target="income", test_size=0.3, seed=0)
    rep = check_representativeness(
        dataset=loaded.outputs["dataset"], sensitive_features=["sex", "race"], reference_population="", policy=policy
    )
    sheet = write_datasheet(
        dataset=loaded.outputs["dataset"],
        collection_plan=plan,
        policy=policy,
        representativeness_report=rep.outputs["report"],
        **ARGS,
    )
    return _D(
        split.outputs["train"],
        split.outputs["test"],
        rep.outputs["status"],
        rep.outputs["passed"],
        rep.outputs["reason"],
        rep.outputs["report"],
        rep.outputs["report_html"],
        rep.outputs["metrics"],
        sheet.outputs["status"],
        sheet.outputs["reason"],
        sheet.outputs["datasheet"],
        sheet.outputs["datasheet_md"],
    )


@dsl.pipeline
def model_chain(source: str, registry_uri: str, policy: str) -> NamedTuple(
    "M",
    train=Dataset,
    model=Model,
    passed=bool,
    reason=str,
    metrics=Metrics,
    cm=ClassificationMetrics,
    explained=str,
    eligible=bool,
    card_status=str,
    card_reason=str,
    card=Markdown,
    version=str,
    sha256=str,
    registered_status=str,
):
    # sex only: in a 4,000-row sample the small race groups cannot be judged, which no policy waives
    args = {"target": "income", "positive_label": ">50K", "sensitive_features": ["sex"]}
    loaded = load_dataset(source=source, **args)
    split = split_dataset(dataset=loaded.outputs["dataset"], target="income", test_size=0.3, seed=0)
    trained = train_model(train=split.outputs["train"], policy=policy, seed=0, model_name="adult-income", **args)
    explained = explain_model(
        model=trained.outputs["model"],
        data=split.outputs["test"],
        sensitive_features=["sex"],
        policy=policy,
        seed=0,
    )
    validated = validate_model(
        model=trained.outputs["model"],
        test=split.outputs["test"],
        policy=policy,
        seed=0,
        explanation=explained.outputs["report"],
        **args,
    )
    rep = check_representativeness(
        dataset=split.outputs["train"],
        sensitive_features=["sex"],
        reference_population="",
        policy=policy,
    )
    card = write_model_card(
        model=trained.outputs["model"],
        representativeness_report=rep.outputs["report"],
        validation_report=validated.outputs["report"],
        explanation_report=explained.outputs["report"],
        intended_use="tests",
    )
    registered = register_model(
        model=trained.outputs["model"],
        model_card=card.outputs["card"],
        model_card_json=card.outputs["card_json"],
        registry_uri=registry_uri,
        policy=policy,
        launched_by="ann",
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    )
    outputs = NamedTuple(
        "M",
        train=Dataset,
        model=Model,
        passed=bool,
        reason=str,
        metrics=Metrics,
        cm=ClassificationMetrics,
        explained=str,
        eligible=bool,
        card_status=str,
        card_reason=str,
        card=Markdown,
        version=str,
        sha256=str,
        registered_status=str,
    )
    return outputs(
        split.outputs["train"],
        trained.outputs["model"],
        validated.outputs["passed"],
        validated.outputs["reason"],
        validated.outputs["metrics"],
        validated.outputs["classification_metrics"],
        explained.outputs["status"],
        card.outputs["passed"],
        card.outputs["status"],
        card.outputs["reason"],
        card.outputs["card"],
        registered.outputs["version"],
        registered.outputs["sha256"],
        registered.outputs["status"],
    )


@dsl.pipeline
def blocked_registration_chain(source: str, registry_uri: str):
    """No dsl.If guards this registration: register_model itself must refuse the blocked card."""
    args = {"target": "income", "positive_label": ">50K", "sensitive_features": ["sex", "race"]}
    loaded = load_dataset(source=source, **args)
    split = split_dataset(dataset=loaded.outputs["dataset"], target="income", test_size=0.3, seed=0)
    trained = train_model(train=split.outputs["train"], policy="", seed=0, **args)
    validated = validate_model(model=trained.outputs["model"], test=split.outputs["test"], policy="", seed=0, **args)
    explained = explain_model(
        model=trained.outputs["model"],
        data=split.outputs["test"],
        sensitive_features=["sex", "race"],
        policy="",
        seed=0,
    )
    card = write_model_card(
        model=trained.outputs["model"],
        representativeness_report=validated.outputs["report"],
        validation_report=validated.outputs["report"],
        explanation_report=explained.outputs["report"],
        intended_use="tests",
    )
    register_model(
        model=trained.outputs["model"],
        model_card=card.outputs["card"],
        model_card_json=card.outputs["card_json"],
        registry_uri=registry_uri,
    )


@dsl.pipeline
def hard_stop_chain(source: str):
    args = {"target": "income", "positive_label": ">50K", "sensitive_features": ["sex", "race"]}
    loaded = load_dataset(source=source, **args)
    split = split_dataset(dataset=loaded.outputs["dataset"], target="income", test_size=0.3, seed=0)
    trained = train_model(train=split.outputs["train"], policy="", seed=0, **args)
    validate_model(
        model=trained.outputs["model"], test=split.outputs["test"], policy="", seed=0, fail_on_violation=True, **args
    )


@dsl.pipeline
def drift_chain(reference: str, current: str) -> NamedTuple(
    "R", status=str, drift_detected=bool, reason=str, report=Artifact
):
    args = {"target": "income", "positive_label": ">50K", "sensitive_features": ["sex", "race"]}
    ref = load_dataset(source=reference, **args)
    cur = load_dataset(source=current, **args)
    drift = detect_drift(reference=ref.outputs["dataset"], current=cur.outputs["dataset"], policy="")
    outputs = NamedTuple("R", status=str, drift_detected=bool, reason=str, report=Artifact)
    return outputs(
        drift.outputs["status"], drift.outputs["drift_detected"], drift.outputs["reason"], drift.outputs["report"]
    )


def test_load_dataset_writes_parquet_with_metadata(local_root, sample_csv):
    loaded = load_dataset(source=sample_csv, **ARGS)
    dataset = loaded.outputs["dataset"]
    assert int(loaded.outputs["rows"]) == 4000
    assert int(dataset.metadata["rows"]) == 4000 and int(dataset.metadata["columns"]) == 15
    assert dataset.metadata["sha256"] == sha256_file(dataset.path)
    assert set(dataset.metadata["schema"]) >= {"income", "sex", "race", "age"}


@dsl.pipeline
def identifier_chain(source: str) -> NamedTuple("I", data=Dataset, train=Dataset, model=Model, drift=Artifact):
    args = {"target": "income", "positive_label": ">50K", "sensitive_features": ["sex", "race"]}
    loaded = load_dataset(source=source, pseudonymize=["customer_id"], **args)
    split = split_dataset(dataset=loaded.outputs["dataset"], target="income", test_size=0.3, seed=0)
    trained = train_model(train=split.outputs["train"], policy="", seed=0, **args)
    drift = detect_drift(reference=split.outputs["train"], current=loaded.outputs["dataset"], policy="")
    outputs = NamedTuple("I", data=Dataset, train=Dataset, model=Model, drift=Artifact)
    return outputs(loaded.outputs["dataset"], split.outputs["train"], trained.outputs["model"], drift.outputs["report"])


def test_pseudonymized_identifiers_are_hidden_and_never_features_or_drift_columns(
    local_root, sample_csv, tmp_path, monkeypatch, capfd
):
    from kfp_rai.core.tables import read_table
    from kfp_rai.discovery import pseudonym

    raw = read_table(sample_csv).assign(customer_id=lambda d: [f"C{i:06d}" for i in range(len(d))])
    source = tmp_path / "with-ids.csv"
    raw.to_csv(source, index=False)
    key = "component-test-key-0123456789abcdef"
    monkeypatch.setenv("KFP_RAI_HMAC_KEY", key)
    run = identifier_chain(source=str(source))
    written = read_table(run.outputs["data"].path, format="parquet")
    assert not set(written["customer_id"]) & set(raw["customer_id"])
    assert written["customer_id"][0] == pseudonym("C000000", key.encode())
    assert run.outputs["train"].metadata["identifier_columns"] == ["customer_id"]
    assert "customer_id" not in run.outputs["model"].metadata["features"]
    assert "age" in run.outputs["model"].metadata["features"]
    drift = json.loads(Path(run.outputs["drift"].path).read_text())
    compared = {c["column"] for c in drift["columns"]}
    assert "customer_id" not in compared and "age" in compared
    assert drift["drift_detected"] is False
    monkeypatch.delenv("KFP_RAI_HMAC_KEY")
    capfd.readouterr()
    with pytest.raises(RuntimeError, match="load-dataset"):  # no key: fails rather than write raw ids
        load_dataset(source=str(source), pseudonymize=["customer_id"], **ARGS)
    out, err = capfd.readouterr()
    assert "needs a key: set KFP_RAI_HMAC_KEY" in out + err  # failed for that reason, not another


def test_load_dataset_refuses_an_unknown_column(local_root, sample_csv):
    with pytest.raises(RuntimeError, match="load-dataset"):
        load_dataset(source=sample_csv, target="salary", positive_label=">50K", sensitive_features=SENSITIVE)


def test_discovery_components(local_root, sample_csv):
    run = discovery_chain(source=sample_csv, policy="", plan="")
    train, test = run.outputs["train"], run.outputs["test"]
    assert int(train.metadata["rows"]) == 2800 and int(test.metadata["rows"]) == 1200
    assert train.metadata["parent_sha256"] and int(train.metadata["seed"]) == 0
    assert (
        run.outputs["passed"] is False and run.outputs["status"] == "failed" and "sex=Female" in run.outputs["reason"]
    )
    report = json.loads(Path(run.outputs["report"].path).read_text())
    assert report["kind"] == "representativeness_report" and report["reference_year"] == 2000
    # Kubeflow gets exactly the verdict the report holds, every finding named in the reason.
    assert (report["status"], report["reason"]) == (run.outputs["status"], run.outputs["reason"])
    assert report["subject"]["data_sha256"]["input"] and report["subject"]["policy_sha256"]
    assert run.outputs["report"].metadata["policy_sha256"]
    assert '<div class="verdict status-failed"' in Path(run.outputs["html"].path).read_text()
    assert run.outputs["metrics"].metadata["share_ratio.sex.Female"] < 0.8
    assert run.outputs["metrics"].metadata["share_ratio.sex × race.Female × Black"] < 0.8
    # The datasheet decides discovery: representativeness and the plan; a CSV of one's own has no plan.
    assert run.outputs["discovery_status"] == "failed"
    assert "no data collection plan was given" in run.outputs["discovery_reason"]
    assert "sex=Female" in run.outputs["discovery_reason"]
    sheet = json.loads(Path(run.outputs["datasheet"].path).read_text())
    assert sheet["kind"] == "datasheet" and sheet["plan"] is None
    assert {"relationship", "marital-status"} <= {a["feature"] for a in sheet["associations"] if a["proxy"]}
    assert "## Proxy features" in Path(run.outputs["datasheet_md"].path).read_text()
    lenient = "representativeness: {min_ratio: 0.01, max_ratio: 10, min_group_size: 5}"
    plan = (REPO / "src" / "kfp_rai" / "data" / "adult" / "collection_plan.yaml").read_text()
    planned = discovery_chain(source=sample_csv, policy=lenient, plan=plan)
    assert planned.outputs["passed"] is True and planned.outputs["status"] == "passed", planned.outputs["reason"]
    assert planned.outputs["discovery_status"] == "passed", planned.outputs["discovery_reason"]


WARN_ONLY = (REPO / "examples" / "policies" / "adult-record-warnings.yaml").read_text()


def test_model_components(local_root, sample_csv, tmp_path):
    registry = tmp_path / "registry"
    run = model_chain(source=sample_csv, registry_uri=str(registry), policy=WARN_ONLY)
    model = run.outputs["model"]
    assert (Path(model.path) / "model.skops").is_file()
    assert model.metadata["sha256"] == sha256_file(Path(model.path) / "model.skops")
    assert model.metadata["framework"] == "sklearn" and "sex" not in model.metadata["features"]
    assert model.metadata["training_data_sha256"] == run.outputs["train"].metadata["sha256"]
    assert model.metadata["policy_sha256"] and model.metadata["kfp_rai_version"]
    assert model.metadata["name"] == "adult-income" and model.metadata["training_verdict"]["status"] == "passed"

    # Violations are recorded as warnings under this policy: the gate passes and says so.
    assert run.outputs["passed"] is True and run.outputs["reason"].startswith("violations recorded as warnings")
    assert "demographic parity" in run.outputs["reason"]
    assert 0.8 < run.outputs["metrics"].metadata["accuracy"] < 0.9
    assert "sex.demographic_parity_ratio" in run.outputs["metrics"].metadata
    cm = run.outputs["cm"].metadata
    assert "confusionMatrix" in cm and "confidenceMetrics" in cm
    assert run.outputs["explained"] == "warning"  # proxies of sex, measured on the test data, recorded

    assert run.outputs["eligible"] is True and run.outputs["card_status"] == "warning"
    assert run.outputs["card_reason"].startswith("eligible, with violations recorded as warnings by ")
    assert "**Verdict: ELIGIBLE WITH WARNINGS**" in Path(run.outputs["card"].path).read_text()
    assert run.outputs["version"] == "1" and run.outputs["sha256"] == model.metadata["sha256"]
    assert run.outputs["registered_status"] == "warning"
    # A candidate: its stored card names its version, its policy is stored with it, its event says who ran it.
    stored_card = (registry / "adult-income" / "1" / "model_card.md").read_text()
    assert "| model | adult-income version 1 |" in stored_card and "version candidate" not in stored_card
    assert (registry / "adult-income" / "1" / "policy.yaml").read_text() == WARN_ONLY
    from kfp_rai.production import ModelRegistry, read_state

    state = read_state(ModelRegistry(str(registry)), "adult-income")
    assert state.versions["1"].state == "candidate" and state.versions["1"].launched_by == "ann"
    assert state.events[0].evidence["run_id"]  # kfp.local's run id: the registration's evidence
    # The training data's drift summary is stored and signed with the model and its registry version.
    stored = (Path(model.path) / "reference_summary.json").read_bytes()
    summary = json.loads(stored)
    assert summary["kind"] == "kfp_rai.data_summary" and summary["rows"] == 2800
    assert {"age", "sex", "income"} <= {c["bins"]["column"] for c in summary["columns"]}
    assert (registry / "adult-income" / "1" / "reference_summary.json").read_bytes() == stored


def test_register_model_refuses_a_blocked_model_without_any_dsl_if(local_root, sample_csv, tmp_path):
    with pytest.raises(RuntimeError, match="register-model"):
        blocked_registration_chain(source=sample_csv, registry_uri=str(tmp_path / "registry"))
    assert not (tmp_path / "registry" / "adult-income").exists() or not any((tmp_path / "registry").rglob("*.skops"))


@dsl.pipeline
def blocked_branch(fail_run: bool) -> str:
    return stop_blocked_model(status="failed", reason="blocked by the validation gate: x", fail_run=fail_run).outputs[
        "reason"
    ]


def test_a_blocked_model_fails_the_run_only_when_the_team_asked(local_root):
    assert (
        blocked_branch(fail_run=False).output == "model blocked, nothing registered: blocked by the validation gate: x"
    )
    with pytest.raises(RuntimeError, match="stop-blocked-model"):
        blocked_branch(fail_run=True)


def test_fail_on_violation_stops_the_run(local_root, sample_csv):
    with pytest.raises(RuntimeError, match="validate-model"):
        hard_stop_chain(source=sample_csv)


@dsl.pipeline
def drift_from_model_chain(source: str, current: str) -> NamedTuple("M", drift_detected=bool, report=Artifact):
    """Refresh as the lifecycle does it: against the model's stored summary, no training data."""
    args = {"target": "income", "positive_label": ">50K", "sensitive_features": ["sex", "race"]}
    loaded = load_dataset(source=source, **args)
    split = split_dataset(dataset=loaded.outputs["dataset"], target="income", test_size=0.3, seed=0)
    trained = train_model(train=split.outputs["train"], policy="", seed=0, **args)
    cur = load_dataset(source=current, **args)
    drift = detect_drift(current=cur.outputs["dataset"], policy="", model=trained.outputs["model"])
    return NamedTuple("M", drift_detected=bool, report=Artifact)(
        drift.outputs["drift_detected"], drift.outputs["report"]
    )


def test_drift_against_the_models_stored_reference(local_root, sample_csv, shifted_parquet):
    run = drift_from_model_chain(source=sample_csv, current=shifted_parquet)
    report = json.loads(Path(run.outputs["report"].path).read_text())
    assert run.outputs["drift_detected"] is True and report["drifted_columns"] == ["age"]
    assert report["reference_rows"] == 2800  # the training split, summarized at training time
    assert report["subject"]["model_name"] == "adult-sample"  # named after its training data's file


def test_detect_drift(local_root, sample_csv, shifted_parquet):
    drifted = drift_chain(reference=sample_csv, current=shifted_parquet)
    assert drifted.outputs["drift_detected"] is True and "age" in drifted.outputs["reason"]
    assert drifted.outputs["status"] == "warning"  # drift: retrain, never shown as a success
    assert json.loads(Path(drifted.outputs["report"].path).read_text())["drifted_columns"] == ["age"]
    same = drift_chain(reference=sample_csv, current=sample_csv)
    assert same.outputs["drift_detected"] is False and same.outputs["status"] == "passed"
