"""The whole lifecycle through `kfp-rai run` (kfp.local), as a user runs it."""

import json
from pathlib import Path

import pytest
import yaml

from kfp_rai.pipelines.tasks import base_name

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_default_run_blocks_the_unfair_model_with_reasons(blocked_run):
    code, out, record = blocked_run.code, blocked_run.out, blocked_run.record
    assert code == 0 and record["pipeline"] == "lifecycle" and record["status"] == "succeeded"
    assert record["outcome"] == "blocked"
    assert record["headline"].startswith("Pipeline ran; the model was BLOCKED by the discovery and validation gates")
    stages = record["stages"]
    assert list(stages) == ["discovery", "training", "validation", "production", "refresh"]
    assert [s["status"] for s in stages.values()] == ["failed", "passed", "failed", "failed", "skipped"]
    assert "sex=Female" in stages["discovery"]["reason"]
    # Every finding, in full: the reason names each problem and run.json holds every finding.
    problems = [f for f in stages["validation"]["findings"] if f["status"] != "passed"]
    assert len(problems) == 15 and all(f["message"] in stages["validation"]["reason"] for f in problems)
    # A rate from a handful of positives is not judged, never a verdict: race=Other has 6 in the test split.
    few = {f["subject"] for f in problems if f["rule"] == "validation.min_positives"}
    assert "race=Other" in few and all(f["status"] == "not_judged" for f in problems if f["subject"] in few)
    # The "done means": the small intersection is too small to judge, the explanation counts the
    # proxies of sex, and discovery judges intersections against the census with simultaneous intervals.
    small = next(f for f in problems if f["subject"] == "sex × race=Female × Other")
    assert small["status"] == "not_judged" and "too small to judge" in small["message"]
    proxy = next(f for f in problems if f["rule"] == "explainability.max_proxy_share")
    assert "marital-status" in proxy["message"] and "relationship" in proxy["message"]
    assert {"marital-status", "relationship"} <= {f for f, a in stages["discovery"]["proxies"].items() if "sex" in a}
    female = stages["discovery"]["groups"]["sex=Female"]
    assert female["representation"] == "under-represented" and female["ci_low"] < female["share"] < female["ci_high"]
    assert "sex × race=Female × Black" in stages["discovery"]["groups"]
    assert stages["discovery"]["collection_plan"].startswith("UCI Adult")
    assert not any(cut in json.dumps(record, ensure_ascii=False) for cut in ("...", "…"))
    # The terminal says what happened in stage order and where the full list is.
    printed = blocked_run.printed
    assert "BLOCKED" in printed and "index.html" in printed
    order = ["discovery", "training", "validation", "production", "refresh"]
    lines = printed.splitlines()
    headline = lines.index(record["headline"])
    tasks, summary = lines[1:headline], lines[headline + 1 : headline + 6]
    assert [line.split()[0] for line in summary] == order  # one line per stage
    task_stages = [line.split()[0] for line in tasks if line.strip()]
    assert task_stages == sorted(task_stages, key=order.index) and "load-dataset" not in printed
    # Task order follows the stages; their names are for people.
    assert [t["stage"] for t in record["tasks"]] == sorted(
        (t["stage"] for t in record["tasks"]),
        key=["discovery", "training", "validation", "production", "refresh"].index,
    )
    index = (out / "index.html").read_text()
    for report in (
        "discovery/representativeness.html",
        "discovery/datasheet.html",
        "validation/validation.html",
        "production/model_card.html",
    ):
        assert f'href="{report}"' in index
    assert stages["discovery"]["groups"]["sex=Female"]["ratio"] < 0.8
    validation = stages["validation"]
    assert validation["overall"]["accuracy"] == pytest.approx(0.87, abs=0.01)
    assert set(validation["per_group"]["sex"]) == {"Female", "Male"}
    assert validation["disparities"]["sex"]["demographic_parity_ratio"] < 0.8
    production = stages["production"]
    assert production["registered"] is False and production["version"] is None
    assert production["deployed"] is False and production["deployment"].startswith("nothing to deploy")
    assert production["reason"].startswith("blocked by the discovery and validation gates")
    # The blocked model took its own branch, named for it, carrying the reason; the run still succeeded.
    assert production["blocked"].startswith("model blocked, nothing registered: blocked by the discovery")
    # (kfp numbers a component's second use, the refresh's own, in no fixed order: the stage says which)
    assert ("production", "stop-blocked-model") in {(t["stage"], base_name(t["task"])[0]) for t in record["tasks"]}
    assert (out / "production" / "blocked.md").read_text().startswith("# Model blocked")
    assert len(production["sha256"]) == 64
    # A model the gates blocked is never refreshed: nothing to compare the current data with.
    assert stages["refresh"]["status"] == "skipped" and "never refreshed" in stages["refresh"]["reason"]
    assert "The refresh did not run" in record["headline"]
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
        "logs/kfp-local.log",
    ):
        assert (out / expected).is_file(), expected
    assert "**Verdict: BLOCKED**" in (out / "production/model_card.md").read_text()
    assert not (blocked_run.registry / "adult-income").exists()  # nothing registered


def test_registers_then_retrains_on_drift(drift_run):
    code, out, record = drift_run.code, drift_run.out, drift_run.record
    assert code == 0, record
    stages = record["stages"]
    assert stages["production"]["registered"] is True and stages["production"]["status"] == "warning"
    # Registration (production) runs and is reported before any refresh task.
    order = ["discovery", "training", "validation", "production", "refresh"]
    task_stages = [t["stage"] for t in record["tasks"]]
    assert task_stages == sorted(task_stages, key=order.index)
    assert ("production", "register-model") in {(t["stage"], base_name(t["task"])[0]) for t in record["tasks"]}
    assert record["outcome"] == "registered"
    # Deployment was asked for, but it serves only what production names, and nobody promoted anything:
    # a registration is a candidate, and the run says what a person does next.
    assert stages["production"]["deployed"] is False and stages["production"]["state"] == "candidate"
    assert stages["production"]["deployment"].startswith(
        "nothing deployed: no version of adult-income is in production"
    )
    assert (out / "production" / "inference-service.yaml").read_text().startswith("# nothing deployed")
    assert "kfp-rai models approve adult-income" in stages["production"]["next_step"]
    refresh = stages["refresh"]
    assert refresh["drift_detected"] is True and refresh["drifted_columns"] == ["age"]
    # The refresh judged the candidate this run registered (nothing is in production before a person
    # promotes it), found the drift and trained a challenger, registered under the challenger alias.
    assert refresh["champion"]["version"] == "1" and "checked before anyone approved it" in refresh["champion"]["role"]
    assert "drift" in refresh["decision"]["triggers"] and refresh["decision"]["retrain"] is True
    retrained = refresh["retrain"]["stages"]["production"]
    assert refresh["retrain"]["triggered"] is True and retrained["registered"] is True and refresh["retrained"]
    assert refresh["status"] == "warning"  # drift: retrained, never shown as a success
    assert refresh["comparison"]["status"] in ("passed", "warning")  # its non-regression gate let it through
    # The refresh runs after the registration it judges: the model is version 1, its challenger version 2.
    version = stages["production"]["version"]
    assert (version, retrained["version"]) == ("1", "2")
    from kfp_rai.production import ModelRegistry, read_state

    state = read_state(ModelRegistry(str(drift_run.registry)), "adult-income")
    assert dict(state.aliases) == {"challenger": "2"} and state.versions["2"].state == "candidate"
    registry = drift_run.registry / "adult-income"
    assert sorted(p.name for p in registry.iterdir()) == ["1", "2", "events"]
    meta = json.loads((registry / version / "metadata.json").read_text())
    assert meta["sha256"] == stages["production"]["sha256"]
    card = (registry / version / "model_card.md").read_text()
    assert "ELIGIBLE WITH WARNINGS" in card
    # Each exception of the policy is on the card with its written reason, quoted.
    assert "validation (not enforced, intersections not gated). Written reason: “Demonstration only" in card
    assert "explainability (not enforced). Written reason:" in card
    assert (out / "refresh" / "retrain" / "production" / "model_card.md").is_file()
    # The challenger's card says why it exists and how it compares with the model it challenges.
    challenger_card = (registry / "2" / "model_card.md").read_text()
    assert "| model | adult-income version 2 |" in challenger_card
    assert "## Why this version exists" in challenger_card and "## Against the champion" in challenger_card
    assert "drift" in challenger_card.split("## Why this version exists")[1].split("##")[0]


def test_a_failing_task_fails_the_run_and_says_where(tmp_path, capsys, lifecycle):
    run = lifecycle(tmp_path, "--quiet", "--test-size", "0.9999")
    code, record = run.code, run.record
    assert code == 1 and record["status"] == "failed" and record["outcome"] == "failed"
    assert record["headline"].startswith("Pipeline FAILED in ")
    failed = [name for name, s in record["stages"].items() if s["status"] == "failed"]
    assert failed and record["error"]
    assert "Traceback" not in capsys.readouterr().err
    assert not (run.registry / "adult-income").exists()


def test_a_reviewers_figures_are_compared_in_validation_and_named_on_the_card(blocked_run, tmp_path, lifecycle):
    """The reviewer recomputes on the test split of the first run (same seed, same bytes): one figure
    agrees, one does not, and the run says so."""
    import pandas as pd

    validation = json.loads((blocked_run.out / "validation" / "validation.json").read_text())
    test = pd.read_parquet(blocked_run.out / "discovery" / "test.parquet")
    sha = validation["subject"]["data_sha256"]["test"]
    women = next(g for g in validation["fairness"][0]["groups"] if g["group"] == "Female")
    reviewer = {
        "reviewer": "Jane Doe",
        "role": "independent validator",
        "date": "2026-11-20",
        "data_sha256": sha,
        "metrics": [
            {"metric": "selection_rate", "attribute": "sex", "group": "Female", "value": women["selection_rate"]},
            {"metric": "accuracy", "value": 0.5},  # a slip the gate must catch
        ],
    }
    assert len(test) == validation["rows"]
    (tmp_path / "reviewer.yaml").write_text(yaml.safe_dump(reviewer))
    run = lifecycle(tmp_path, "--quiet", "--reviewer", str(tmp_path / "reviewer.yaml"))
    stage = run.record["stages"]["validation"]
    assert run.code == 0 and stage["status"] == "failed"
    checks = {f["subject"]: f["status"] for f in stage["findings"] if f["rule"].startswith("validation.reviewer")}
    assert checks == {"reviewer": "passed", "selection_rate (sex=Female)": "passed", "accuracy (overall)": "failed"}
    assert "accuracy (overall): reviewer 0.5000, ours 0.8699: they disagree by 0.3699" in stage["reason"]
    card = (run.out / "production" / "model_card.md").read_text()
    assert "Jane Doe (independent validator) computed 2 figures on 2026-11-20" in card
