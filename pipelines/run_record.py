"""Turn a finished kfp.local pipeline directory into a run directory and its ``run.json``.

kfp.local leaves ``<pipeline_dir>/<task>/<output>`` plus ``executor_output.json`` (parameters and
artifact metadata) per task. This module moves those outputs to ``<run_dir>/<stage>/<file>`` with
names people recognise and records each stage's verdict *as the task that decides it returned it*
(the same status and reason Kubeflow shows), with every finding from its report. It judges
nothing itself. It never imports kfp.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_rai._version import __version__
from kfp_rai.core.files import read_json, write_json
from kfp_rai.discovery import associations_from_dicts, proxy_features
from kfp_rai.pipelines.tasks import DECIDERS, METADATA_ONLY, STAGES, TASKS, base_name, place


@dataclass
class Task:
    """What one task produced: output parameters, files (relative to the run dir), artifact metadata."""

    name: str
    params: dict[str, Any]
    files: dict[str, str]
    metadata: dict[str, Any]
    retrain: bool = False  # a task of the refresh's challenger (inside the lifecycle's refresh sub-pipeline)
    stage: str = ""  # where it is filed (kfp_rai.pipelines.tasks.place)


def collect_outputs(pipeline_dir: Path, run_dir: Path, nested: frozenset[str] = frozenset()) -> dict[str, Task]:
    """Move every task's outputs into ``run_dir``; return what each task produced. ``nested``: the
    tasks inside a refresh sub-pipeline (:func:`kfp_rai.pipelines.tasks.nested_tasks`)."""
    tasks: dict[str, Task] = {}
    for task_dir in sorted(p for p in pipeline_dir.iterdir() if p.is_dir()):
        where = place(task_dir.name, nested)
        output_file = task_dir / "executor_output.json"
        if where is None or not output_file.is_file():
            continue
        stage, sub, _ = where
        executor = read_json(output_file)
        base, n = base_name(task_dir.name)
        target_dir = run_dir / stage / sub if sub else run_dir / stage
        files: dict[str, str] = {}
        metadata: dict[str, Any] = {}
        for output, spec in executor.get("artifacts", {}).items():
            artifact = spec["artifacts"][0]
            metadata[output] = artifact.get("metadata", {})
            name = TASKS[base].files.get(output, output)
            if base == "load-dataset" and stage == "refresh":
                name = f"data-{n}.parquet"
            target = target_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = task_dir / output
            if output in METADATA_ONLY:
                write_json(target, artifact.get("metadata", {}))
            elif source.exists():
                shutil.move(str(source), str(target))
            else:
                continue
            files[output] = str(target.relative_to(run_dir))
        retrain = task_dir.name in nested and where[1].startswith("retrain")
        tasks[task_dir.name] = Task(task_dir.name, executor.get("parameterValues", {}), files, metadata, retrain, stage)
    return tasks


def _findings(run_dir: Path, task: Task, output: str | None) -> list[dict[str, Any]]:
    """The deciding task's findings: from its report, or (training) its model's metadata."""
    if output is None:
        return list(task.metadata.get("model", {}).get("training_verdict", {}).get("findings", []))
    if output not in task.files:
        return []
    return list(read_json(run_dir / task.files[output]).get("findings", []))


def _verdict(run_dir: Path, task: Task, output: str | None, **numbers: Any) -> dict[str, Any]:
    status = str(task.params.get("status", "not_judged"))
    return {
        "status": status,
        "passed": status in ("passed", "warning"),
        "reason": str(task.params.get("reason", "")),
        "findings": _findings(run_dir, task, output),
        **numbers,
    }


def _pass(tasks: dict[str, Task], retrain: bool) -> dict[str, Task | None]:
    """One build-and-judge pass's tasks by kind: the main one, or the refresh's challenger."""
    chosen = {base_name(name)[0]: task for name, task in tasks.items() if task.retrain == retrain}
    return {base: chosen.get(base) for base in TASKS}


def _artifacts(t: dict[str, Task | None], stage: str, retrain: bool) -> list[str]:
    names = {b for b, k in TASKS.items() if k.stage == stage}
    if stage == "discovery" and not retrain:
        names.discard("load-dataset")  # the loaded data is kept in training's split only
    return sorted(f for name in names if (task := t.get(name)) is not None for f in task.files.values())


def _judge_pass(run_dir: Path, tasks: dict[str, Task], retrain: bool) -> dict[str, dict[str, Any]]:
    """Stage records of one build-and-judge pass (the main one, or the refresh's challenger)."""
    out: dict[str, dict[str, Any]] = {}
    t = _pass(tasks, retrain)
    for stage in ("discovery", "training", "validation", "production"):
        name, output = DECIDERS[stage]
        decider = t[name]
        if decider is None:
            continue
        numbers: dict[str, Any] = {"artifacts": _artifacts(t, stage, retrain)}
        report = read_json(run_dir / decider.files[output]) if output and output in decider.files else {}
        if stage == "discovery":
            loaded = t["load-dataset"].metadata.get("dataset", {}) if t["load-dataset"] else {}
            shares = report.get("representativeness", {})
            keys = ("count", "share", "ci_low", "ci_high", "reference_share", "ratio", "representation")
            numbers.update(
                personal_data=loaded.get("personal_data", []),
                rows=report.get("rows"),
                groups={f"{g['attribute']}={g['group']}": {k: g[k] for k in keys} for g in shares.get("groups", [])},
                proxies=proxy_features(associations_from_dicts(report.get("associations", []))),
                collection_plan=(report.get("plan") or {}).get("title"),
            )
        if stage == "training":
            meta = decider.metadata.get("model", {})
            numbers.update(
                rows=meta.get("rows"),
                features=meta.get("features"),
                train_accuracy=meta.get("train_accuracy"),
                model_sha256=meta.get("sha256"),
            )
        if stage == "validation":
            keys = (
                "count",
                "accuracy",
                "selection_rate",
                "true_positive_rate",
                "false_positive_rate",
                "precision",
                "roc_auc",
            )
            numbers.update(
                overall=report.get("overall", {}),
                per_group={
                    f["attribute"]: {g["group"]: {k: g[k] for k in keys} for g in f["groups"]}
                    for f in report.get("fairness", [])
                },
                disparities={
                    f["attribute"]: {
                        k: f[k]
                        for k in (
                            "demographic_parity_difference",
                            "demographic_parity_ratio",
                            "equalized_odds_difference",
                        )
                    }
                    for f in report.get("fairness", [])
                },
            )
        record = _verdict(run_dir, decider, output, **numbers)
        if stage == "production":
            model = t["train-model"].metadata.get("model", {}) if t["train-model"] else {}
            record.update({"sha256": model.get("sha256"), **_production(t)})
        out[stage] = record
    return out


def _production(t: dict[str, Task | None]) -> dict[str, Any]:
    """Registration and deployment: the register task's verdict replaces the card's once it ran."""
    reg, dep, blocked = t["register-model"], t["deploy-model"], t["stop-blocked-model"]
    registered = reg is not None and "version" in reg.params
    out: dict[str, Any] = {"registered": registered, "version": None, "registry_uri": None}
    if registered and reg is not None:
        out.update(
            status=reg.params["status"],
            passed=True,
            reason=reg.params["reason"],
            version=str(reg.params["version"]),
            sha256=reg.params.get("sha256"),
            registry_uri=reg.params.get("uri"),
            state="candidate",
            next_step=str(reg.params.get("next_step", "")),
        )
        out["findings"] = reg.metadata.get("registered", {}).get("verdict", {}).get("findings", [])
    elif blocked is not None:
        out["blocked"] = str(blocked.params.get("reason", ""))
    if dep is not None:
        out.update(deployed=bool(dep.params.get("deployed")), deployment=str(dep.params.get("reason", "")))
    elif registered:
        out.update(deployed=False, deployment="deployment not requested (run with deploy=true / kfp-rai run --deploy)")
    else:
        out.update(deployed=False, deployment="nothing to deploy: the model was not registered")
    return out


def _refresh_record(run_dir: Path, tasks: dict[str, Task], monitor: Task, retrain: bool) -> dict[str, Any]:
    """The refresh stage: the refresh gate's verdict, what it found and decided, and the challenger's
    pass (its stages and its comparison with the champion) when one was trained."""
    report = read_json(run_dir / monitor.files["report"]) if "report" in monitor.files else {}
    challenger = _judge_pass(run_dir, tasks, retrain) if monitor.params.get("retrain") else {}
    refresh_files = [f for t in tasks.values() if t.stage == "refresh" for f in t.files.values()]
    compared = tasks.get("compare-models")
    drift = report.get("drift") or {}
    return _verdict(
        run_dir,
        monitor,
        "report",
        artifacts=sorted(refresh_files),
        champion=report.get("champion", {}),
        drift_detected=bool(monitor.params.get("drift_detected")),
        drifted_columns=[c["column"] for c in drift.get("columns", []) if c.get("drifted")],
        decision=report.get("decision", {}),
        retrained=bool(challenger.get("production", {}).get("registered")),
        comparison=(
            {"status": str(compared.params.get("status")), "reason": str(compared.params.get("reason", ""))}
            if compared is not None
            else None
        ),
        retrain={"triggered": bool(challenger), "stages": challenger},
    )


def _skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "passed": False, "reason": reason, "findings": [], "artifacts": []}


def outcome(record: dict[str, Any]) -> tuple[str, str]:
    """(outcome, headline): ``failed`` (the pipeline broke), ``blocked`` (it ran; the gates stopped the
    model) or ``registered``, and one sentence a newcomer understands."""
    stages = record["stages"]
    if record["status"] != "succeeded":
        error = record.get("error") or "see the log"
        where = record.get("failed_task")
        if not where:
            return "failed", f"Pipeline FAILED: {error}"
        label = place(where)[2] if place(where) else where  # the kind of task says enough here
        return "failed", f"Pipeline FAILED in {label} ({where}): {error}"
    refresh = stages["refresh"]
    if record["pipeline"] == "refresh":
        return _refresh_outcome(refresh)
    prod = stages["production"]
    if prod.get("registered"):
        warned = " with recorded warnings" if prod["status"] == "warning" else ""
        head = (
            f"Pipeline ran: model registered as version {prod['version']}{warned}, a candidate: nobody has "
            "approved it yet."
        )
        kind = "registered"
    else:
        blockers = [f["subject"] for f in prod.get("findings", []) if f["status"] not in ("passed", "warning")] or [
            "production"
        ]
        head = (
            f"Pipeline ran; the model was BLOCKED by the {' and '.join(blockers)} gate"
            f"{'s' if len(blockers) > 1 else ''}, as the policy requires: nothing was registered."
        )
        kind = "blocked"
    if refresh["status"] == "skipped":
        return kind, head + " The refresh did not run: a model the gates blocked is never refreshed."
    return kind, f"{head} {_refresh_outcome(refresh)[1]}"


def _refresh_outcome(refresh: dict[str, Any]) -> tuple[str, str]:
    """(outcome, sentence) of the refresh: ``registered`` (a challenger awaits a decision),
    ``blocked`` (its gates stopped it), ``checked`` (no challenger) or ``no_champion``."""
    if refresh["status"] == "skipped" or not refresh.get("champion"):
        return "no_champion", f"Refresh: nothing to compare with: {refresh.get('reason', '')}"
    decision = refresh["decision"]
    triggers = ", ".join(decision.get("triggers", [])) or "nothing"
    unjudged = " Something could not be judged (the refresh fails closed)." if refresh["status"] == "not_judged" else ""
    retrain = refresh.get("retrain", {})
    if not decision.get("triggers"):
        return "checked", f"Refresh: nothing triggered: the model still sees what it was judged on.{unjudged}"
    if not retrain.get("triggered"):
        return "checked", f"Refresh: {triggers} triggered; no challenger: {decision.get('reason', '')}.{unjudged}"
    prod = retrain["stages"].get("production", {})
    if prod.get("registered"):
        return "registered", (
            f"Refresh: {triggers} triggered; a challenger was registered as version {prod['version']} under the "
            f"challenger alias: a person decides on it.{unjudged}"
        )
    return "blocked", f"Refresh: {triggers} triggered; the challenger was blocked by its gates.{unjudged}"


def build_run_record(
    run_dir: Path,
    tasks: dict[str, Task],
    *,
    pipeline: str,
    status: str,
    error: str | None,
    failed_task: str | None = None,
    arguments: dict[str, Any],
    started: str,
    finished: str,
    task_seconds: dict[str, float] | None = None,
    nested: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The ``run.json`` record (see ``schemas/run.schema.json``); ``nested``: the tasks inside a
    refresh sub-pipeline (:func:`kfp_rai.pipelines.tasks.nested_tasks`)."""
    stages = _judge_pass(run_dir, tasks, False) if pipeline != "refresh" else {}
    monitor, champion = tasks.get("monitor-model"), tasks.get("resolve-champion")
    if monitor is not None:
        # a refresh run's only pass is its challenger's; a lifecycle's is inside its refresh sub-pipeline
        stages["refresh"] = _refresh_record(run_dir, tasks, monitor, pipeline != "refresh")
        if pipeline == "refresh":
            stages.update(stages["refresh"]["retrain"]["stages"])
    elif champion is not None and champion.params.get("found") is False:
        why = str(champion.params.get("reason", ""))
        stages["refresh"] = {
            **_skipped(why),
            "status": "not_judged",  # nothing was compared: never "no drift"
            "champion": {},
            "drift_detected": False,
            "drifted_columns": [],
            "decision": {"retrain": False, "triggers": [], "reason": why},
            "retrained": False,
            "retrain": {"triggered": False, "stages": {}},
        }
    if pipeline != "refresh" and "refresh" not in stages and status == "succeeded":
        stages["refresh"] = _skipped("the model was not registered: a model the gates blocked is never refreshed")
    if pipeline == "refresh":
        why = stages.get("refresh", {}).get("decision", {}).get("reason") or "no challenger was trained"
        for stage in STAGES[:-1]:
            stages.setdefault(stage, _skipped(f"a refresh run trains no model of its own: {why}"))
    failed_stage = None
    if status != "succeeded":
        where = place(failed_task, nested) if failed_task else None
        failed_stage = where[0] if where else next((s for s in STAGES if s not in stages), STAGES[-1])
        stages[failed_stage] = {
            **stages.get(failed_stage, _skipped("")),
            "status": "failed",
            "passed": False,
            "reason": f"task {failed_task} failed: {error or 'see the log'}"
            if failed_task
            else f"stopped here: {error or 'see the log'}",
            "task_error": error or "see the log",
        }
    for stage in STAGES:
        if stage not in stages:
            stages[stage] = _skipped("an earlier task failed" if failed_stage else "did not run")
    record: dict[str, Any] = {
        "pipeline": pipeline,
        "status": status,
        "error": error,
        "failed_task": failed_task,
        "kfp_rai_version": __version__,
        "started": started,
        "finished": finished,
        "arguments": arguments,
        "tasks": [
            {"task": name, "stage": p[0], "label": p[2], "seconds": round(seconds, 2)}
            for name, seconds in (task_seconds or {}).items()
            if (p := place(name, nested))
        ],
        "stages": {s: stages[s] for s in STAGES},
    }
    record["outcome"], record["headline"] = outcome(record)
    return record


def validate_run_record(record: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if ``record`` does not match the run.json schema."""
    from importlib.resources import files

    import jsonschema

    schema = files("kfp_rai.schemas").joinpath("run.schema.json").read_text(encoding="utf-8")
    jsonschema.validate(record, json.loads(schema))
