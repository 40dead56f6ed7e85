"""Turn a finished kfp.local pipeline directory into a run directory and its ``run.json``.

kfp.local leaves ``<pipeline_dir>/<task>/<output>`` plus ``executor_output.json`` (parameters and
artifact metadata) per task. This module moves those outputs to ``<run_dir>/<stage>/<file>`` with
names people recognise and summarises each stage from the reports' JSON. It never imports kfp.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from kfp_rai._version import __version__
from kfp_rai.io import read_json, write_json

STAGES = ("discovery", "training", "validation", "production", "refresh")
RUN_SCHEMA = Path(__file__).resolve().parent / "schemas" / "run.schema.json"

_TASK_STAGE = {
    "load-dataset": "discovery",
    "split-dataset": "discovery",
    "check-representativeness": "discovery",
    "train-model": "training",
    "validate-model": "validation",
    "explain-model": "validation",
    "write-model-card": "production",
    "register-model": "production",
    "deploy-model": "production",
    "detect-drift": "refresh",
}
_FILES = {
    ("load-dataset", "dataset"): "data.parquet",
    ("split-dataset", "train"): "train.parquet",
    ("split-dataset", "test"): "test.parquet",
    ("check-representativeness", "report"): "representativeness.json",
    ("check-representativeness", "report_html"): "representativeness.html",
    ("check-representativeness", "metrics"): "representativeness_metrics.json",
    ("train-model", "model"): "model",
    ("validate-model", "report"): "validation.json",
    ("validate-model", "report_html"): "validation.html",
    ("validate-model", "metrics"): "metrics.json",
    ("validate-model", "classification_metrics"): "classification_metrics.json",
    ("explain-model", "report"): "explanation.json",
    ("explain-model", "report_html"): "explanation.html",
    ("write-model-card", "card"): "model_card.md",
    ("write-model-card", "card_html"): "model_card.html",
    ("write-model-card", "card_json"): "model_card.json",
    ("register-model", "registered"): "registered.json",
    ("deploy-model", "report"): "deployment.json",
    ("deploy-model", "manifest"): "serving-manifest.yaml",
    ("detect-drift", "report"): "drift.json",
    ("detect-drift", "report_html"): "drift.html",
    ("detect-drift", "metrics"): "drift_metrics.json",
}
# Artifacts whose content is their metadata (kfp writes no file for them).
_METADATA_ONLY = {"metrics", "classification_metrics", "registered"}


def _base(task: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.+?)-(\d+)", task)
    return (match.group(1), int(match.group(2))) if match else (task, 1)


def _place(task: str) -> tuple[str, str] | None:
    """(stage, sub-directory) of a task: the second use of the build-and-judge tasks is the retrain."""
    base, n = _base(task)
    if base not in _TASK_STAGE:
        return None
    if base == "load-dataset" and n == 2:
        return ("refresh", "")
    if n >= 2:
        return ("refresh", "retrain/" + _TASK_STAGE[base])
    return (_TASK_STAGE[base], "")


class _Task:
    def __init__(self, name: str, params: dict[str, Any], files: dict[str, str], metadata: dict[str, Any]):
        self.name, self.params, self.files, self.metadata = name, params, files, metadata


def collect_outputs(pipeline_dir: Path, run_dir: Path) -> dict[str, _Task]:
    """Move every task's outputs into ``run_dir``; return what each task produced."""
    tasks: dict[str, _Task] = {}
    for task_dir in sorted(p for p in pipeline_dir.iterdir() if p.is_dir()):
        place = _place(task_dir.name)
        output_file = task_dir / "executor_output.json"
        if place is None or not output_file.is_file():
            continue
        stage, sub = place
        executor = read_json(output_file)
        base, _ = _base(task_dir.name)
        target_dir = run_dir / stage / sub if sub else run_dir / stage
        files: dict[str, str] = {}
        metadata: dict[str, Any] = {}
        for output, spec in executor.get("artifacts", {}).items():
            artifact = spec["artifacts"][0]
            metadata[output] = artifact.get("metadata", {})
            name = _FILES.get((base, output), output)
            if task_dir.name == "load-dataset-2":
                name = "current.parquet"
            target = target_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = task_dir / output
            if output in _METADATA_ONLY:
                write_json(target, artifact.get("metadata", {}))
            elif source.exists():
                shutil.move(str(source), str(target))
            else:
                continue
            files[output] = str(target.relative_to(run_dir))
        tasks[task_dir.name] = _Task(task_dir.name, executor.get("parameterValues", {}), files, metadata)
    return tasks


def _stage(status: str, reason: str, artifacts: list[str], **numbers: Any) -> dict[str, Any]:
    return {"status": status, "reason": reason, "artifacts": sorted(artifacts), **numbers}


def _read(run_dir: Path, task: _Task | None, output: str) -> dict[str, Any]:
    if task is None or output not in task.files:
        return {}
    return read_json(run_dir / task.files[output])


def _per_group(validation: dict[str, Any]) -> dict[str, Any]:
    keys = ("count", "accuracy", "selection_rate", "true_positive_rate", "false_positive_rate", "roc_auc")
    return {
        f["attribute"]: {g["group"]: {k: g[k] for k in keys} for g in f["groups"]}
        for f in validation.get("fairness", [])
    }


def _disparities(validation: dict[str, Any]) -> dict[str, Any]:
    keys = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference")
    return {f["attribute"]: {k: f[k] for k in keys} for f in validation.get("fairness", [])}


def _judge(run_dir: Path, tasks: dict[str, _Task], suffix: str) -> dict[str, dict[str, Any]]:
    """Stage records of one build-and-judge pass (suffix "" = main pass, "-2" = retrain)."""
    t = {base: tasks.get(base + suffix) for base in _TASK_STAGE}
    rep = _read(run_dir, t["check-representativeness"], "report")
    val = _read(run_dir, t["validate-model"], "report")
    exp = _read(run_dir, t["explain-model"], "report")
    card = _read(run_dir, t["write-model-card"], "card_json")
    model_meta = t["train-model"].metadata.get("model", {}) if t["train-model"] else {}
    reg = t["register-model"]

    def arts(*bases: str) -> list[str]:
        return [f for b in bases if t[b] for f in t[b].files.values()]

    out: dict[str, dict[str, Any]] = {}
    if rep:
        out["discovery"] = _stage(
            "passed" if rep["passed"] else "failed",
            rep["reason"],
            arts("split-dataset", "check-representativeness"),
            rows=rep["rows"],
            representativeness_passed=rep["passed"],
            groups={
                f"{g['attribute']}={g['group']}": {k: g[k] for k in ("count", "share", "reference_share", "ratio")}
                for g in rep["groups"]
            },
        )
    if model_meta:
        out["training"] = _stage(
            "passed",
            f"{model_meta.get('estimator')} trained on {model_meta.get('rows')} rows",
            arts("train-model"),
            rows=model_meta.get("rows"),
            features=model_meta.get("features"),
            train_accuracy=model_meta.get("train_accuracy"),
            model_sha256=model_meta.get("sha256"),
        )
    if val:
        out["validation"] = _stage(
            "passed" if val["passed"] else "failed",
            val["reason"],
            arts("validate-model", "explain-model"),
            overall=val["overall"],
            per_group=_per_group(val),
            disparities=_disparities(val),
            explanation={
                "top_features": [i["feature"] for i in exp.get("importance", [])[:5]],
                "sensitive_share": exp.get("sensitive_share"),
                "flagged": exp.get("flagged"),
            },
        )
    if card:
        registered = reg is not None and "version" in reg.params
        reason = card["reason"] if not registered else f"registered as version {reg.params['version']}"
        dep = t["deploy-model"]
        deployed = bool(dep and dep.params.get("deployed"))
        if dep is not None:
            deployment_reason = dep.params.get("reason", "")
        elif registered:
            deployment_reason = "deployment not requested (run with deploy=true / kfp-rai run --deploy)"
        else:
            deployment_reason = "nothing to deploy: the model was not registered"
        out["production"] = _stage(
            "passed" if registered else "failed",
            reason if registered else f"not registered: {reason}",
            arts("write-model-card", "register-model", "deploy-model"),
            registered=registered,
            version=reg.params.get("version") if registered else None,
            sha256=model_meta.get("sha256"),
            registry_uri=reg.params.get("uri") if registered else None,
            deployed=deployed,
            deployment=deployment_reason,
        )
    return out


def _skipped(reason: str) -> dict[str, Any]:
    return _stage("skipped", reason, [])


def build_run_record(
    run_dir: Path,
    tasks: dict[str, _Task],
    *,
    pipeline: str,
    status: str,
    error: str | None,
    failed_task: str | None = None,
    arguments: dict[str, Any],
    started: str,
    finished: str,
) -> dict[str, Any]:
    """The ``run.json`` record (see ``schemas/run.schema.json``)."""
    stages = _judge(run_dir, tasks, "")
    drift_task = tasks.get("detect-drift")
    drift = _read(run_dir, drift_task, "report")
    if drift:
        refresh_files = [
            f for n, t in tasks.items() if (p := _place(n)) and p[0] == "refresh" for f in t.files.values()
        ]
        retrain = _judge(run_dir, tasks, "-2")
        record: dict[str, Any] = {"triggered": bool(retrain)}
        # Too little current data to judge is not "no drift": the stage fails closed.
        status_r, reason_r = ("passed", drift["reason"]) if drift.get("judged", True) else ("failed", drift["reason"])
        if retrain:
            prod = retrain.get("production", {})
            record.update(
                validation_passed=retrain.get("validation", {}).get("status") == "passed",
                registered=prod.get("registered", False),
                version=prod.get("version"),
                reason=prod.get("reason", "retrain did not finish"),
            )
            if not prod.get("registered"):
                status_r, reason_r = (
                    "failed",
                    f"{drift['reason']}; retrained model {prod.get('reason', 'not finished')}",
                )
            else:
                reason_r = f"{drift['reason']}; retrained model registered as version {prod['version']}"
        stages["refresh"] = _stage(
            status_r,
            reason_r,
            refresh_files,
            drift_detected=drift["drift_detected"],
            drifted_columns=drift["drifted_columns"],
            retrain=record,
        )
    failed_stage = None
    if status != "succeeded":
        place = _place(failed_task) if failed_task else None
        failed_stage = place[0] if place else next((s for s in STAGES if s not in stages), STAGES[-1])
        message = f"task {failed_task or '?'} failed: {error or 'see logs'}"
        stages[failed_stage] = {
            **stages.get(failed_stage, _stage("failed", "", [])),
            "status": "failed",
            "reason": message,
            "task_error": error or "see logs",
        }
    for stage in STAGES:
        if stage not in stages:
            stages[stage] = _skipped("an earlier stage failed" if failed_stage else "did not run")
    return {
        "pipeline": pipeline,
        "status": status,
        "error": error,
        "failed_task": failed_task,
        "kfp_rai_version": __version__,
        "started": started,
        "finished": finished,
        "arguments": arguments,
        "stages": {s: stages[s] for s in STAGES},
    }


def validate_run_record(record: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if ``record`` does not match the run.json schema."""
    import jsonschema

    jsonschema.validate(record, json.loads(RUN_SCHEMA.read_text(encoding="utf-8")))
