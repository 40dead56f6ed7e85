"""A challenger's making: the rows it trains on (the current ones, or the champion's training data
and them), its comparison with the champion on the same held-out rows, and the message that tells
people it awaits their decision."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from kfp_rai.core.model_dir import read_model_files
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import Policy
from kfp_rai.refresh._champion import Champion
from kfp_rai.refresh._compare import ComparisonReport, Scored, compare_models

NOTIFY_TIMEOUT_S = 5.0


def training_window(
    frames: Sequence[pd.DataFrame], metas: Sequence[Mapping[str, Any]]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The current rows (first) and the champion's training rows (second, optional) as one table over
    the columns both hold; the metadata says where each part came from and how many rows it gave."""
    if not frames:
        raise DataValidationError("a challenger needs training rows: none were given")
    columns = [c for c in frames[0].columns if all(c in f.columns for f in frames)]
    dropped = sorted({str(c) for f in frames for c in f.columns if c not in columns})
    combined = pd.concat([f[columns] for f in frames], ignore_index=True)
    parts = [
        {"source": str(m.get("source", "")), "rows": int(len(f)), "sha256": str(m.get("sha256", ""))}
        for f, m in zip(frames, metas, strict=True)
    ]
    identifiers = sorted({c for m in metas for c in m.get("identifier_columns", []) if c in columns})
    meta: dict[str, Any] = {
        # the current data's source names the data set (a bundled set's own plan and use apply); the parts say all
        "source": str(parts[0]["source"]),
        "window": "reference+current" if len(frames) > 1 else "current",
        "parts": parts,
        "identifier_columns": identifiers,
        "columns_left_out": dropped,
    }
    return combined, meta


def _scores(model: Any, meta: Mapping[str, Any], test: pd.DataFrame, name: str) -> Scored:
    features = [str(f) for f in meta["features"]]
    missing = [f for f in features if f not in test.columns]
    if missing:
        raise DataValidationError(f"the held-out rows lack {name}'s inputs {missing}")
    scores = model.predict_proba(test[features])[:, 1]
    return Scored(name, scores, float(meta.get("decision_threshold", 0.5)))


def compare_with_champion(
    champion: Champion,
    challenger_dir: Any,
    test: pd.DataFrame,
    *,
    sensitive: Sequence[str],
    policy: Policy,
    seed: int = 0,
    challenger_sha256: str | None = None,
) -> tuple[ComparisonReport, dict[str, Any]]:
    """Score the same held-out rows with both models (each verified, each with its own inputs and
    threshold) and compare them (:func:`~kfp_rai.refresh._compare.compare_models`); returns the
    report and the challenger's metadata."""
    from kfp_rai.core.model_dir import load_model_bytes

    files, meta = read_model_files(challenger_dir, challenger_sha256)
    challenger = load_model_bytes(files["model.skops"], expected_sha256=str(meta["sha256"]))
    target, positive = str(champion.meta["target"]), str(champion.meta["positive_label"])
    report = compare_models(
        _scores(champion.estimator(), champion.meta, test, "the champion"),
        _scores(challenger, meta, test, "the challenger"),
        test,
        target=target,
        positive_label=positive,
        sensitive=[a for a in sensitive if a in test.columns],
        policy=policy,
        seed=seed,
        champion_info={"name": champion.name, "version": champion.version, "role": champion.role,
                       "sha256": champion.meta.get("sha256")},
        challenger_info={"name": f"trained on {len(test)} held-out rows' data", "sha256": meta.get("sha256")},
    )  # fmt: skip
    return report, meta


def notify(url: str, registered: Mapping[str, Any], *, next_step: str, why: str) -> tuple[str, str]:
    """POST a short JSON about a challenger awaiting a decision to ``url``; returns (status, reason).
    Delivery is best effort: a failure is a warning, never a failed run."""
    if not url.strip():
        return "not_judged", "no webhook set (refresh.notify_url or the notify_url parameter): nobody was notified"
    if not url.startswith(("http://", "https://")):
        return "warning", f"the webhook {url!r} is not an http(s) URL: nobody was notified"
    body = {
        "event": "challenger_awaits_decision",
        "model": registered.get("name"),
        "version": str(registered.get("version")),
        "alias": "challenger",
        "sha256": registered.get("sha256"),
        "registry": registered.get("registry_uri"),
        "why": why,
        "next_step": next_step,
    }
    request = urllib.request.Request(
        url, data=json.dumps(body).encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=NOTIFY_TIMEOUT_S) as response:  # noqa: S310 # nosec B310
            code = response.status
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return "warning", f"the webhook did not take the notification ({' '.join(str(exc).split())[:200]})"
    if not 200 <= code < 300:
        return "warning", f"the webhook answered HTTP {code}: the notification may not have arrived"
    return "passed", f"notified {url.split('?', 1)[0]} (HTTP {code}) that version {body['version']} awaits a decision"
