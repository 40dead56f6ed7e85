"""What the thin component wrappers share: policy parsing, lineage, model dirs, report files.

Kept free of kfp (it deals in paths and dicts) so it can be unit-tested like the logic.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from kfp_rai._report import Report
from kfp_rai._version import __version__
from kfp_rai.errors import IntegrityError
from kfp_rai.io import atomic_write_text, read_json, write_json
from kfp_rai.policy import Policy
from kfp_rai.training import load_model, save_model

MODEL_FILE = "model.skops"
MODEL_META = "metadata.json"


def write_report(
    report: Report, json_path: str, html_path: str | None = None, md_path: str | None = None
) -> dict[str, Any]:
    """Write a report as JSON (and HTML/Markdown for people); return its dict."""
    data = report.to_dict()
    write_json(json_path, data)
    if html_path:
        atomic_write_text(html_path, report.to_html())
    if md_path:
        atomic_write_text(md_path, report.to_markdown())
    return data


def save_model_dir(model: Any, path: str | os.PathLike[str], metadata: dict[str, Any]) -> dict[str, Any]:
    """Save ``model`` as ``<path>/model.skops`` with ``<path>/metadata.json``; return the metadata."""
    Path(path).mkdir(parents=True, exist_ok=True)
    sha = save_model(model, Path(path) / MODEL_FILE)
    meta = {**metadata, "sha256": sha, "kfp_rai_version": __version__, "format": "skops"}
    write_json(Path(path) / MODEL_META, meta)
    return meta


def load_model_dir(path: str | os.PathLike[str], expected_sha256: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Load a model directory written by :func:`save_model_dir`, verifying its hash.

    ``expected_sha256`` (from the artifact's metadata) must agree with the directory's own record.
    """
    meta_path = Path(path) / MODEL_META
    if not meta_path.is_file():
        raise IntegrityError(f"{path} is not a kfp-rai model directory: {MODEL_META} is missing")
    meta = read_json(meta_path)
    if expected_sha256 and expected_sha256 != meta.get("sha256"):
        raise IntegrityError(f"{path}: the artifact's recorded sha256 differs from {MODEL_META}: refusing it")
    model = load_model(Path(path) / MODEL_FILE, expected_sha256=expected_sha256 or meta.get("sha256", ""))
    return model, meta


def lineage(policy: Policy, **inputs: str) -> dict[str, str]:
    """Metadata every artifact carries: input hashes, policy hash and package version."""
    return {**inputs, "policy_sha256": policy.sha256, "kfp_rai_version": __version__}


def loggable_metrics(values: dict[str, float], prefix: str = "") -> dict[str, float]:
    """Finite values only, rounded: kfp's metadata (protobuf Struct) cannot hold NaN or inf."""
    return {f"{prefix}{k}": round(float(v), 4) for k, v in values.items() if v is not None and math.isfinite(v)}
