"""Evidence a task leaves behind: report files with their subject, lineage, and UI metrics.

Kept free of kfp (paths and dicts only), so the component wrappers stay a few lines each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from kfp_rai._version import __version__
from kfp_rai.core.files import PathLike, atomic_write_text, write_json
from kfp_rai.core.report import Report, Subject
from kfp_rai.core.verdict import Verdict

CANDIDATE = "candidate"  # the version of a model the registry has not numbered yet


def write_report(
    report: Report,
    subject: Subject,
    json_path: PathLike,
    html_path: PathLike | None = None,
    md_path: PathLike | None = None,
) -> dict[str, Any]:
    """Write a report as JSON (and HTML/Markdown for people), each naming its subject."""
    data = report.to_dict(subject)
    write_json(json_path, data)
    if html_path:
        atomic_write_text(html_path, report.to_html(subject))
    if md_path:
        atomic_write_text(md_path, report.to_markdown(subject))
    return data


def model_subject(meta: Mapping[str, Any], policy_sha256: str, version: str = CANDIDATE, **data_sha256: str) -> Subject:
    """The subject of a report about the model described by ``meta`` (a model directory's metadata)."""
    return Subject(
        model_name=meta.get("name"),
        model_version=version,
        model_sha256=meta.get("sha256"),
        data_sha256={"training": meta.get("training_data_sha256", ""), **data_sha256},
        policy_sha256=policy_sha256,
    )


def lineage(policy_sha256: str, **inputs: str) -> dict[str, str]:
    """Metadata every artifact carries: input hashes, policy hash and package version."""
    return {**inputs, "policy_sha256": policy_sha256, "kfp_rai_version": __version__}


def gate_outputs(verdict: Verdict) -> tuple[str, bool, str]:
    """``(status, passed, reason)``: what every gate component returns to Kubeflow."""
    return verdict.status.value, verdict.passed, verdict.reason


def loggable_metrics(values: Mapping[str, float | None], prefix: str = "") -> dict[str, float]:
    """Finite values only, rounded: kfp's metadata (protobuf Struct) cannot hold NaN or inf."""
    return {f"{prefix}{k}": round(float(v), 4) for k, v in values.items() if v is not None and math.isfinite(float(v))}
