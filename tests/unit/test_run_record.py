"""The run record's pieces that need no pipeline run: task order, outcome, the index banner."""

import pytest

from kfp_rai.core.verdict import GateStatus
from kfp_rai.pipelines.local import stage_order
from kfp_rai.pipelines.run_index import outcome_status, render_index
from kfp_rai.pipelines.run_record import outcome

# The lifecycle's root DAG as kfp.local sees it (task -> upstream tasks): condition-branches-1
# registers (and then refreshes, inside it) or stops the blocked model.
LIFECYCLE = {
    "load-dataset": [],
    "check-registry": ["load-dataset"],
    "split-dataset": ["check-registry", "load-dataset"],
    "check-representativeness": ["load-dataset", "split-dataset"],
    "write-datasheet": ["check-representativeness", "load-dataset"],
    "train-model": ["split-dataset", "write-datasheet"],
    "explain-model": ["split-dataset", "train-model", "write-datasheet"],
    "validate-model": ["explain-model", "split-dataset", "train-model"],
    "write-model-card": ["check-representativeness", "explain-model", "train-model", "validate-model"],
    "condition-branches-1": ["train-model", "validate-model", "write-model-card"],
}
# Inside the registration branch: the refresh sub-pipeline runs on what was registered.
REGISTERED_BRANCH = {"register-model": [], "condition-2": ["register-model"], "kfp-rai-refresh": ["register-model"]}


def test_tasks_run_in_lifecycle_order_whatever_order_kfp_lists_them_in():
    for dag in (LIFECYCLE, REGISTERED_BRANCH):
        expected = list(dag)
        for listing in (dag, dict(sorted(dag.items())), dict(reversed(list(dag.items())))):
            assert stage_order(listing) == expected  # discovery first; registration before the refresh


def test_a_dependency_cycle_is_refused():
    with pytest.raises(RuntimeError, match="cycle"):
        stage_order({"a": ["b"], "b": ["a"]})


def _stage(status, **extra):
    return {
        "status": status,
        "passed": status in ("passed", "warning"),
        "reason": status,
        "findings": [],
        "artifacts": [],
        **extra,
    }


def _record(production, refresh, retrain=None, status="succeeded"):
    triggers = ["drift"] if refresh["status"] != "passed" else []
    stages = {
        "discovery": _stage("passed"),
        "training": _stage("passed"),
        "validation": _stage("passed"),
        "production": production,
        "refresh": {
            **refresh,
            "champion": {"role": "candidate adult-income version 1"},
            "decision": {"retrain": retrain is not None, "triggers": triggers, "reason": "drift triggered"},
            "retrain": {"triggered": retrain is not None, "stages": retrain or {}},
        },
    }
    record = {
        "pipeline": "lifecycle",
        "status": status,
        "error": None,
        "failed_task": None,
        "stages": stages,
        "started": "t",
        "finished": "t",
        "kfp_rai_version": "0",
        "tasks": [],
    }
    record["outcome"], record["headline"] = outcome(record)
    return record


REGISTERED = _stage("passed", registered=True, version="1")


@pytest.mark.parametrize(
    ("record", "colour", "words"),
    [
        (_record(REGISTERED, _stage("passed")), GateStatus.PASSED, "registered as version 1, a candidate"),
        (_record(REGISTERED, _stage("not_judged")), GateStatus.NOT_JUDGED, "could not be judged"),
        (
            _record(REGISTERED, _stage("warning"), {"production": _stage("warning", registered=True, version="2")}),
            GateStatus.WARNING,
            "a challenger was registered as version 2",
        ),
        (
            _record(REGISTERED, _stage("warning"), {"production": _stage("failed", registered=False)}),
            GateStatus.FAILED,
            "the challenger was blocked by its gates",
        ),
        (_record(_stage("failed", registered=False), _stage("passed")), GateStatus.FAILED, "BLOCKED"),
    ],
)
def test_the_outcome_banner_is_never_green_unless_every_stage_passed(record, colour, words):
    assert outcome_status(record) is colour and words in record["headline"]
    assert f'<div class="verdict status-{colour.value}"' in render_index(record)


def test_the_index_gives_productions_reason_once_not_every_stage_twice():
    from kfp_rai.pipelines.run_index import _reason

    long = "blocked by the discovery and validation gates: discovery: 13 of 20 checks failed: ...; validation: ..."
    findings = [
        {"subject": "discovery", "status": "failed"},
        {"subject": "training", "status": "passed"},
        {"subject": "validation", "status": "not_judged"},
    ]
    short = _reason("production", {"status": "failed", "reason": long, "findings": findings})
    assert short == (
        "blocked by the discovery and validation gates: their reasons are in their own rows above, and on the "
        "model card"
    )  # named from the findings' statuses: a reason worded otherwise changes nothing
    assert _reason("production", {"status": "failed", "reason": "x", "findings": findings}).startswith(
        "blocked by the discovery and validation gates:"
    )
    assert _reason("validation", {"status": "failed", "reason": long, "findings": findings}) == long
    assert _reason("production", {"status": "passed", "reason": "every gate passed"}) == "every gate passed"
