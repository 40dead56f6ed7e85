"""ModelService: everything a prediction goes through, usable without any server (tests, batch).

Every request is judged before the model sees it; predictions, rejections and refusals are all
written to the audit trail.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import tempfile
import threading
from http import HTTPStatus
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.model_dir import fetch_version, load_model_dir
from kfp_rai.core.numbers import is_finite_number
from kfp_rai.discovery import pseudonym
from kfp_rai.errors import DataValidationError
from kfp_rai.serving._audit import AuditLog, canonical_json
from kfp_rai.serving._killswitch import SERVER_LOCK, journal_size, read_journal, safe_state_dir

logger = logging.getLogger(__name__)

MAX_INSTANCES = 1000


def load_served_model(model_uri: str) -> tuple[Any, dict[str, Any]]:
    """A registry version (directory or URI), its signature verified before anything is loaded."""
    local = model_uri if "://" not in model_uri else tempfile.mkdtemp(prefix="kfp-rai-model-")
    return load_model_dir(fetch_version(model_uri, local))


def _kind(value: Any) -> str:
    return {bool: "true/false", str: "text", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


class ModelService:
    """Everything the HTTP layer calls; usable without a server (tests, batch scoring)."""

    def __init__(
        self,
        model: tuple[Any, dict[str, Any]],
        *,
        audit: AuditLog,
        state_dir: str | os.PathLike[str] | None = None,
        hmac_key: bytes | None = None,
        development: bool = False,
    ) -> None:
        """Serve ``model`` (from :func:`load_served_model`), take the state directory, record the start.

        ``audit`` is the one writer of the audit log; ``hmac_key`` pseudonymizes request ids (none:
        ids are withheld from the log, never stored raw or as an unkeyed hash).
        """
        self.model, self.meta = model
        self.features: list[str] = list(self.meta["features"])
        self.profile: dict[str, dict[str, Any]] = self.meta.get("feature_profile", {})
        self.threshold = float(self.meta.get("decision_threshold", 0.5))
        self.audit = audit
        self.state_dir = safe_state_dir(state_dir)
        self._server_lock = open(self.state_dir / SERVER_LOCK, "a+b")  # noqa: SIM115 - held while serving
        fcntl.flock(self._server_lock.fileno(), fcntl.LOCK_SH)
        self._hmac_key = hmac_key
        self._switch_lock = threading.Lock()
        entries = read_journal(self.state_dir)
        self._journal_seen, self._journal_size = len(entries), journal_size(self.state_dir)
        last = entries[-1] if entries else None
        self._disabled = last if last is not None and last.action != "enable" else None
        self.audit.append(
            {
                "event": "start",
                **self._model_fields(),
                # the switch as found: actions taken while no server ran are in the operator journal
                "switch": {"disabled": self._disabled is not None, **(last.to_dict() if last else {})},
                "development_audit_key": development,
                "ids": "pseudonymized" if hmac_key else "withheld (no pseudonymization key)",
            }
        )
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="kfp-rai-switch-watch", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        """Record operator actions as they happen, not only when the next request comes."""
        while not self._stop.wait(0.5):
            self.observe_switch()

    def _model_fields(self) -> dict[str, Any]:
        return {
            "model": self.meta.get("name"),
            "model_version": self.meta.get("version"),
            "model_sha256": self.meta.get("sha256"),
        }

    def describe(self) -> dict[str, Any]:
        keys = ("name", "version", "sha256", "estimator", "target", "positive_label", "kfp_rai_version")
        return {**{k: self.meta.get(k) for k in keys}, "features": self.features, "threshold": self.threshold}

    def observe_switch(self) -> str | None:
        """The kill switch's reason (None: on). Each new operator journal entry is recorded in the
        audit trail, in order, the first time the server sees it (a stat per call otherwise)."""
        size = journal_size(self.state_dir)
        with self._switch_lock:
            if size != self._journal_size and not self.audit.closed:
                for entry in read_journal(self.state_dir, after=self._journal_seen):
                    event = {"disable": "operator_disabled", "enable": "operator_enabled"}.get(
                        entry.action, "operator_journal_unreadable"
                    )
                    self.audit.append({"event": event, **entry.to_dict(), **self._model_fields()})
                    self._disabled = None if entry.action == "enable" else entry
                    self._journal_seen = entry.seq
                self._journal_size = size
            disabled = self._disabled
        return None if disabled is None else disabled.reason or "disabled"

    def close(self) -> None:
        """Record the stop, write the final checkpoint, release the log and the state directory."""
        self._stop.set()
        if self._watcher.is_alive() and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=2)
        if not self._server_lock.closed:
            self.observe_switch()  # an action taken just before the stop is still recorded
            self.audit.append({"event": "stop", **self._model_fields()})
            self.audit.close()
            self._server_lock.close()

    def _pseudonym(self, value: Any) -> str | None:
        if self._hmac_key is None:
            return None  # withheld: an unkeyed hash of an id is reversible by brute force
        return "hmac:" + pseudonym(value, self._hmac_key)  # the same pseudonym the pipeline's data carries

    def malformed(self, why: str) -> tuple[int, dict[str, Any]]:
        """A request the HTTP layer could not read (bad length, not JSON): recorded, then refused."""
        self.audit.append({"event": "malformed", "why": why, **self._model_fields()})
        return HTTPStatus.BAD_REQUEST, {"error": why}

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
                # The problem is named by type only: a rejected value may be personal data.
                if kind == "numeric" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise DataValidationError(f"instance {i}: feature {f!r} must be a number, got {_kind(value)}")
                if kind == "numeric" and not is_finite_number(value):
                    raise DataValidationError(f"instance {i}: feature {f!r} must be a finite number within float range")
                if kind == "categorical" and not isinstance(value, str):
                    raise DataValidationError(f"instance {i}: feature {f!r} must be a string, got {_kind(value)}")
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
        fingerprint = self.audit.fingerprint(canonical_json(payload))
        base = {**self._model_fields(), **({"request_hmac": fingerprint} if fingerprint else {})}
        reason = self.observe_switch()
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
        audit_hash = self.audit.append(
            {
                "event": "predict",
                **base,
                "ids": [self._pseudonym(i) if i is not None else None for i in ids],
                "predictions": [[p["probability"], p["label"]] for p in predictions],
                "alerts": [a for a in alerts],
            }
        )
        if any(alerts):
            logger.warning(
                "unusual input in %d of %d instances (audit record %s)",
                sum(map(bool, alerts)),
                len(alerts),
                audit_hash[:12],
            )
        return HTTPStatus.OK, {"predictions": predictions, "model_version": base["model_version"], "audit": audit_hash}
