"""Which lifecycle task is which: its stage, the name people know it by, its output files, and
which task's verdict is each stage's. Read by the run record and by `kfp-rai run`'s progress lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
}
# The task whose outputs are a stage's verdict, and the output holding its report (findings).
DECIDERS = {
    "discovery": ("write-datasheet", "datasheet"),
    "training": ("train-model", None),
    "validation": ("validate-model", "report"),
    "production": ("write-model-card", "card_json"),
    "refresh": ("detect-drift", "report"),
}
# Artifacts whose content is their metadata (kfp writes no file for them).
METADATA_ONLY = {"metrics", "classification_metrics", "registered"}


def base_name(task: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.+?)-(\d+)", task)
    return (match.group(1), int(match.group(2))) if match else (task, 1)


def place(task: str) -> tuple[str, str, str] | None:
    """(stage, sub-directory, label for people) of a kfp task name, or None for an unknown task.

    The second use of the build-and-judge tasks is the retrain, filed under refresh/retrain/; the
    second data load is the current data, which belongs to refresh.
    """
    base, n = base_name(task)
    if base not in TASKS:
        return None
    kind = TASKS[base]
    if base == "load-dataset" and n == 2:
        return ("refresh", "", "load current data")
    if n >= 2:
        return ("refresh", f"retrain/{kind.stage}", f"retrain: {kind.label}")
    return (kind.stage, "", kind.label)
