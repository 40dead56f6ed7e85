"""Which lifecycle task is which: its stage, the name people know it by, its output files, and
which task's verdict is each stage's. Read by the run record and by `kfp-rai run`'s progress lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

STAGES = ("discovery", "training", "validation", "production", "refresh")


@dataclass(frozen=True)
class TaskKind:
    """What a component is in the lifecycle: its stage, a name for people, its output files."""

    stage: str
    label: str
    files: dict[str, str] = field(default_factory=dict)


TASKS = {
    "load-dataset": TaskKind("discovery", "load data", {"dataset": "data.parquet"}),
    "split-dataset": TaskKind("discovery", "split train/test", {"train": "train.parquet", "test": "test.parquet"}),
    "check-representativeness": TaskKind(
        "discovery",
        "representativeness gate",
        {
            "report": "representativeness.json",
            "report_html": "representativeness.html",
            "metrics": "representativeness_metrics.json",
        },
    ),
    "write-datasheet": TaskKind(
        "discovery",
        "datasheet + collection plan (discovery gate)",
        {"datasheet": "datasheet.json", "datasheet_md": "datasheet.md", "datasheet_html": "datasheet.html"},
    ),
    "train-model": TaskKind("training", "train model", {"model": "model"}),
    "explain-model": TaskKind(
        "validation", "explainability gate", {"report": "explanation.json", "report_html": "explanation.html"}
    ),
    "validate-model": TaskKind(
        "validation",
        "validation gate",
        {
            "report": "validation.json",
            "report_html": "validation.html",
            "metrics": "metrics.json",
            "classification_metrics": "classification_metrics.json",
            "prediction_reference": "prediction_reference.json",
        },
    ),
    "write-model-card": TaskKind(
        "production",
        "model card (production gate)",
        {"card": "model_card.md", "card_html": "model_card.html", "card_json": "model_card.json"},
    ),
    "check-registry": TaskKind("discovery", "registry check (before anything is trained)"),
    "register-model": TaskKind(
        "production", "register model (candidate)", {"registered": "registered.json", "next_steps": "next_steps.md"}
    ),
    "stop-blocked-model": TaskKind("production", "model blocked: nothing registered", {"report": "blocked.md"}),
    "deploy-model": TaskKind(
        "production", "deploy model", {"report": "deployment.json", "manifest": "inference-service.yaml"}
    ),
    "detect-drift": TaskKind(
        "refresh", "drift check", {"report": "drift.json", "report_html": "drift.html", "metrics": "drift_metrics.json"}
    ),
    "resolve-champion": TaskKind("refresh", "resolve the champion (verified)", {"champion": "champion"}),
    "monitor-model": TaskKind(
        "refresh",
        "refresh gate: drift, predictions, performance, fairness; the decision",
        {"report": "refresh.json", "report_html": "refresh.html", "metrics": "refresh_metrics.json"},
    ),
    "combine-datasets": TaskKind("refresh", "the challenger's training rows", {"dataset": "training_rows.parquet"}),
    "compare-models": TaskKind(
        "refresh", "challenger against champion", {"report": "comparison.json", "report_html": "comparison.html"}
    ),
    "notify-challenger": TaskKind("refresh", "notify: a challenger awaits a decision"),
}
# The task whose outputs are a stage's verdict, and the output holding its report (findings).
DECIDERS = {
    "discovery": ("write-datasheet", "datasheet"),
    "training": ("train-model", None),
    "validation": ("validate-model", "report"),
    "production": ("write-model-card", "card_json"),
    "refresh": ("monitor-model", "report"),
}
# Artifacts whose content is their metadata (kfp writes no file for them).
METADATA_ONLY = {"metrics", "classification_metrics", "registered"}


def base_name(task: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.+?)-(\d+)", task)
    return (match.group(1), int(match.group(2))) if match else (task, 1)


def place(task: str, nested: frozenset[str] = frozenset()) -> tuple[str, str, str] | None:
    """(stage, sub-directory, label for people) of a kfp task name, or None for an unknown task.

    ``nested`` names the tasks inside the refresh sub-pipeline of a lifecycle run
    (:func:`nested_tasks`): its build-and-judge tasks are the challenger's, filed under
    refresh/retrain/ (its data load under refresh/). The refresh's own tasks (the champion, the
    refresh gate, the comparison) are filed under refresh/ wherever they run. kfp names a
    component's second use ``<name>-2``, but which use gets which number depends on the compiler,
    so the nesting, not the number, says which task is which.
    """
    base, _ = base_name(task)
    if base not in TASKS:
        return None
    kind = TASKS[base]
    if kind.stage == "refresh":
        return ("refresh", "", kind.label)
    if task in nested:
        if base == "load-dataset":
            return ("refresh", "", "load data for a challenger")
        return ("refresh", f"retrain/{kind.stage}", f"retrain: {kind.label}")
    return (kind.stage, "", kind.label)


_NESTED: dict[str, frozenset[str]] = {}


def nested_tasks(pipeline: str) -> frozenset[str]:
    """The local task names (kfp.local's directory names) of the tasks that run inside the refresh
    sub-pipeline of ``pipeline``, read from its shipped compiled spec (the compiler names them), so
    the CLI neither imports kfp nor builds the pipeline (1.7 s of every run). It labels the progress
    lines; the runner reports the set of the pipeline it really ran (:func:`nested_in_component`),
    which files the outputs (tests/pipeline/test_compiled.py holds the shipped spec to the compiler's)."""
    if pipeline not in _NESTED:
        from importlib.resources import files

        import yaml

        text = files("kfp_rai.pipelines.compiled").joinpath(f"{pipeline}.yaml").read_text(encoding="utf-8")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        _NESTED[pipeline] = nested_in(next(yaml.load_all(text, Loader=loader)))  # nosec B506  # safe loaders only
    return _NESTED[pipeline]


def nested_in_component(component: Any) -> frozenset[str]:
    """:func:`nested_tasks` of a built pipeline (a kfp GraphComponent), from its own spec in memory."""
    from google.protobuf import json_format

    return nested_in(json_format.MessageToDict(component.pipeline_spec))


def nested_in(spec: dict[str, Any]) -> frozenset[str]:
    """The tasks inside a refresh sub-pipeline of a compiled pipeline spec (as a dict)."""
    found: set[str] = set()

    def walk(dag: dict[str, Any], inside: bool) -> None:
        for task in dag.get("tasks", {}).values():
            name = task["componentRef"]["name"]
            component = spec["components"][name]
            if "dag" in component:
                walk(component["dag"], inside or name.startswith("comp-kfp-rai-refresh"))
            elif inside:
                found.add(name[len("comp-") :])

    walk(spec["root"]["dag"], False)
    return frozenset(found)
