"""The serving app: validated predictions, a hash-chained audit log, alerts and a kill switch.

Standard library HTTP server (one model, small JSON requests); every request is judged before the
model sees it and every prediction is written to an append-only audit log whose records are
chained by sha256, so a removed or edited line is detectable (:func:`verify_audit_log`). Raw
feature values never enter the log: only a hash of the request and HMAC-pseudonymized ids.

Endpoints: ``GET /healthz`` (process alive), ``GET /readyz`` (model loaded and enabled),
``GET /v1/model`` (version, hash, features), ``POST /v1/predict`` with
``{"instances": [{feature: value, ..., "id": optional}]}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.discovery._privacy import pseudonym
from kfp_rai.errors import DataValidationError, IntegrityError, InvalidParameterError
from kfp_rai.io import read_json, write_json

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
MAX_BODY_BYTES = 1 << 20
MAX_INSTANCES = 1000
DISABLED_FILE = "disabled.json"


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class AuditLog:
    """Append-only JSON lines; each record holds ``prev`` (the previous record's ``hash``) and its
    own ``hash`` = sha256 of the record without it. Appends are serialized and fsynced."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        ok, count, message = verify_audit_log(self.path)
        if not ok:
            raise IntegrityError(f"audit log {self.path} is broken ({message}); keep it as evidence, start a new one")
        self._seq = count
        self._last = GENESIS
        if count:
            with open(self.path, "rb") as fh:
                self._last = json.loads(fh.read().splitlines()[-1])["hash"]

    def append(self, event: dict[str, Any]) -> str:
        with self._lock:
            record = {"seq": self._seq + 1, "time": _now(), **event, "prev": self._last}
            record["hash"] = hashlib.sha256(_canonical(record)).hexdigest()
            with open(self.path, "ab") as fh:
                fh.write(_canonical(record) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._seq += 1
            self._last = record["hash"]
            return record["hash"]


def verify_audit_log(path: str | os.PathLike[str]) -> tuple[bool, int, str]:
    """Recompute the chain. Returns (intact, records, message naming the first broken record)."""
    path = Path(path)
    if not path.exists():
        return True, 0, "no log yet"
    prev = GENESIS
    count = 0
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                record = json.loads(line)
                claimed = record.pop("hash")
            except (json.JSONDecodeError, KeyError, AttributeError):
                return False, count, f"line {number} is not an audit record"
            if record.get("prev") != prev:
                return (
                    False,
                    count,
                    f"line {number} does not follow line {number - 1} (a record was removed or reordered)",
                )
            if hashlib.sha256(_canonical(record)).hexdigest() != claimed:
                return False, count, f"line {number} was altered after it was written"
            prev = claimed
            count += 1
    return True, count, f"{count} records, chain intact"


def disable(state_dir: str | os.PathLike[str], reason: str, by: str = "") -> None:
    """Kill switch: every prediction is refused (503) until :func:`enable`."""
    if not reason.strip():
        raise InvalidParameterError("say why the model is disabled: --reason is required")
    write_json(
        Path(state_dir) / DISABLED_FILE, {"reason": reason, "time": _now(), "by": by or os.environ.get("USER", "")}
    )


def enable(state_dir: str | os.PathLike[str]) -> None:
    (Path(state_dir) / DISABLED_FILE).unlink(missing_ok=True)


def disabled_reason(state_dir: str | os.PathLike[str]) -> str | None:
    path = Path(state_dir) / DISABLED_FILE
    return read_json(path).get("reason", "disabled") if path.exists() else None


def _fetch_model_dir(model_uri: str) -> Path:
    """A local directory as is; any pyarrow URI (s3://...) is copied to a temporary directory."""
    if "://" not in model_uri:
        return Path(model_uri)
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(model_uri)
    local = Path(tempfile.mkdtemp(prefix="kfp-rai-model-"))
    for name in ("model.skops", "metadata.json"):
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
        from kfp_rai._artifacts import load_model_dir

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
        request_hash = hashlib.sha256(_canonical(payload)).hexdigest()
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


def make_handler(service: ModelService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kfp-rai"

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/healthz":
                self._send(HTTPStatus.OK, {"status": "ok"})
            elif self.path == "/readyz":
                reason = disabled_reason(service.state_dir)
                if reason is None:
                    self._send(HTTPStatus.OK, {"status": "ready", "model_version": service.meta.get("version")})
                else:
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "disabled", "reason": reason})
            elif self.path == "/v1/model":
                self._send(HTTPStatus.OK, service.describe())
            else:
                self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/v1/predict":
                self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {MAX_BODY_BYTES} bytes"})
                return
            try:
                payload = json.loads(self.rfile.read(length) or b"null")
            except json.JSONDecodeError as exc:
                self._send(HTTPStatus.BAD_REQUEST, {"error": f"body is not JSON: {exc}"})
                return
            status, body = service.predict(payload)
            self._send(status, body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            logger.info("%s %s", self.address_string(), format % args)

    return Handler


def serve(service: ModelService, host: str, port: int) -> ThreadingHTTPServer:
    """A started-not-yet-serving HTTP server; call ``serve_forever()`` (or use a thread in tests)."""
    return ThreadingHTTPServer((host, port), make_handler(service))
