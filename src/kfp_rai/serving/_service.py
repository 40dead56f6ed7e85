"""ModelService: everything a prediction goes through, usable without any server (tests, batch).

Every request is judged before the model sees it; predictions, rejections and refusals are all
written to the audit trail.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import tempfile
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.model_dir import META_FILE, MODEL_FILE, load_model_dir
from kfp_rai.discovery import pseudonym
from kfp_rai.errors import DataValidationError
from kfp_rai.serving._audit import AuditLog, canonical_json
from kfp_rai.serving._killswitch import disabled_reason

logger = logging.getLogger(__name__)

MAX_INSTANCES = 1000


def _fetch_model_dir(model_uri: str) -> Path:
    """A local directory as is; any pyarrow URI (s3://...) is copied to a temporary directory."""
    if "://" not in model_uri:
        return Path(model_uri)
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(model_uri)
    local = Path(tempfile.mkdtemp(prefix="kfp-rai-model-"))
    for name in (MODEL_FILE, META_FILE):
        with fs.open_input_stream(f"{root.rstrip('/')}/{name}") as src, open(local / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return local


class ModelService:
    """Everything the HTTP layer calls; usable without a server (tests, batch scoring)."""

    def __init__(
        self,
        model_uri: str,
        *,
        audit_log: str | os.PathLike[str],
        state_dir: str | os.PathLike[str],
        hmac_key: bytes | None = None,
    ) -> None:
        self.model, self.meta = load_model_dir(_fetch_model_dir(model_uri))
        self.features: list[str] = list(self.meta["features"])
        self.profile: dict[str, dict[str, Any]] = self.meta.get("feature_profile", {})
        self.threshold = float(self.meta.get("decision_threshold", 0.5))
        self.audit = AuditLog(audit_log)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._hmac_key = hmac_key

    def describe(self) -> dict[str, Any]:
        keys = ("name", "version", "sha256", "estimator", "target", "positive_label", "kfp_rai_version")
        return {**{k: self.meta.get(k) for k in keys}, "features": self.features, "threshold": self.threshold}

    def _pseudonym(self, value: Any) -> str:
        if self._hmac_key is None:
            return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()[:16]
        return "hmac:" + pseudonym(value, self._hmac_key)  # the same pseudonym the pipeline's data carries

    def _frame(self, payload: Any) -> tuple[pd.DataFrame, list[Any]]:
        if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
            raise DataValidationError('the body must be {"instances": [{feature: value, ...}, ...]}')
        rows = payload["instances"]
        if not 1 <= len(rows) <= MAX_INSTANCES:
            raise DataValidationError(f"send between 1 and {MAX_INSTANCES} instances, got {len(rows)}")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise DataValidationError(f"instance {i} is not an object")
            missing = [f for f in self.features if f not in row]
            if missing:
                raise DataValidationError(f"instance {i} lacks features {missing}")
            for f in self.features:
                value, kind = row[f], self.profile.get(f, {}).get("kind")
                if value is None:
                    continue
                if kind == "numeric" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise DataValidationError(f"instance {i}: feature {f!r} must be a number, got {value!r}")
                if kind == "categorical" and not isinstance(value, str):
                    raise DataValidationError(f"instance {i}: feature {f!r} must be a string, got {value!r}")
        frame = pd.DataFrame([{f: row[f] for f in self.features} for row in rows], columns=self.features)
        for f in self.features:
            if self.profile.get(f, {}).get("kind") == "numeric":
                frame[f] = pd.to_numeric(frame[f], errors="coerce").astype(float)
            else:
                frame[f] = frame[f].astype(object).where(frame[f].notna(), np.nan)
        return frame, [row.get("id") for row in rows]

    def _alerts(self, frame: pd.DataFrame) -> list[list[str]]:
        alerts: list[list[str]] = [[] for _ in range(len(frame))]
        for f, spec in self.profile.items():
            if f not in frame.columns:
                continue
            for i, value in enumerate(frame[f].tolist()):
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                if spec["kind"] == "numeric" and not spec["min"] <= value <= spec["max"]:
                    alerts[i].append(f"{f} outside training range [{spec['min']:g}, {spec['max']:g}]")
                elif spec["kind"] == "categorical" and spec.get("values") is not None and value not in spec["values"]:
                    alerts[i].append(f"{f}: category not seen in training")
        return alerts

    def predict(self, payload: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body). Refusals are audited too: the log shows what was asked and denied."""
        request_hash = hashlib.sha256(canonical_json(payload)).hexdigest()
        base = {
            "model_version": self.meta.get("version"),
            "model_sha256": self.meta.get("sha256"),
            "request_sha256": request_hash,
        }
        reason = disabled_reason(self.state_dir)
        if reason is not None:
            self.audit.append({"event": "refused", "why": f"disabled: {reason}", **base})
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"model disabled: {reason}"}
        try:
            frame, ids = self._frame(payload)
        except DataValidationError as exc:
            self.audit.append({"event": "rejected", "why": str(exc), **base})
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        scores = self.model.predict_proba(frame)[:, 1]
        alerts = self._alerts(frame)
        positive = str(self.meta.get("positive_label", "1"))
        predictions = [
            {
                "probability": round(float(p), 6),
                "label": positive if p >= self.threshold else f"not {positive}",
                "alerts": a,
            }
            for p, a in zip(scores, alerts, strict=True)
        ]
        if any(alerts):
            logger.warning(
                "unusual input in %d of %d instances (request %s)",
                sum(map(bool, alerts)),
                len(alerts),
                request_hash[:12],
            )
        audit_hash = self.audit.append(
            {
                "event": "predict",
                **base,
                "ids": [self._pseudonym(i) if i is not None else None for i in ids],
                "predictions": [[p["probability"], p["label"]] for p in predictions],
                "alerts": [a for a in alerts],
            }
        )
        return HTTPStatus.OK, {"predictions": predictions, "model_version": base["model_version"], "audit": audit_hash}
