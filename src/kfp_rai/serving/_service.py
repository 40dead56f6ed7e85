"""ModelService: everything a prediction goes through, usable without any server (tests, batch).

Every request is judged before the model sees it (schema, types, ranges); predictions, rejections,
refusals and alerts are all written to the audit trail and counted (Prometheus). The KServe model
server (:mod:`kfp_rai.serving._kserve`) is a thin protocol layer over it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.files import sha256_bytes
from kfp_rai.core.model_dir import (
    CARD_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    fetch_version,
    load_model_bytes,
    read_model_files,
)
from kfp_rai.core.numbers import is_finite_number
from kfp_rai.core.state import safe_state_dir
from kfp_rai.discovery import pseudonym
from kfp_rai.errors import DataValidationError
from kfp_rai.refresh._traffic import TrafficRecorder
from kfp_rai.serving import _metrics as metrics
from kfp_rai.serving._audit import AuditLog
from kfp_rai.serving._fast import FastScorer, model_columns
from kfp_rai.serving._killswitch import SERVER_LOCK, journal_size, read_journal
from kfp_rai.stats.intervals import wilson_interval

logger = logging.getLogger(__name__)

MAX_INSTANCES = 1000
SERVABLE = ("passed", "warning")  # a registration whose gates passed, or recorded accepted warnings


class RequestRejected(DataValidationError):
    """The request does not fit the model's schema (HTTP 400); the message names the instance,
    the feature and the problem, never a value."""


class ServingDisabled(Exception):
    """The kill switch is on (HTTP 503, with the operator's reason)."""


@dataclass(frozen=True)
class ServedModel:
    """A verified registry version: the estimator, its signed metadata, and the card it was
    registered with (its bytes, verified with the rest)."""

    estimator: Any
    meta: dict[str, Any]
    card: bytes | None
    reference: bytes | None = None  # the training data's summary: the bins traffic is counted over

    def unservable(self) -> str | None:
        """Why this model may not be served (None: it may): it must be a registry version whose
        card let every gate pass or recorded accepted warnings, and the card must be the one
        registered. All of it is inside the signature, so none of it can be edited."""
        registration = self.meta.get("registration")
        if not isinstance(registration, dict):
            return "it is not a registry version (no registration record): register it through the pipeline"
        if self.card is None or registration.get("card_sha256") != sha256_bytes(self.card):
            return "its model card is not the one it was registered with"
        if registration.get("eligible") is not True or registration.get("status") not in SERVABLE:
            return f"its gates did not let it through ({registration.get('status')}: {registration.get('reason')})"
        return None


def load_served_model(model_uri: str) -> ServedModel:
    """A registry version (directory or URI): every file read once and its signature verified
    before anything is deserialized (see :func:`kfp_rai.core.model_dir.load_model_dir`)."""
    local = model_uri if "://" not in model_uri else tempfile.mkdtemp(prefix="kfp-rai-model-")
    path = fetch_version(model_uri, local)
    files, meta = read_model_files(path)
    estimator = load_model_bytes(files[MODEL_FILE], expected_sha256=meta["sha256"], shown_as=path)
    return ServedModel(estimator, meta, files.get(CARD_FILE), files.get(REFERENCE_FILE))


def _kind(value: Any) -> str:
    return {bool: "true/false", str: "text", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Job:
    """One request's instances and how to record them (see :meth:`ModelService.predict_batch`)."""

    rows: Sequence[Any]
    fingerprint: str | None = None
    protocol: str = "v1"
    reasons: bool = False


class RateMonitor:
    """Watches the share of positive predictions over the last ``window`` ones against the rate
    the model predicted on its own test data; alerts when the window's Wilson interval (99.9%)
    excludes it. Changes of state are what gets recorded, not every prediction."""

    def __init__(self, expected: float | None, window: int = 500, minimum: int = 100) -> None:
        self.expected = expected
        self.minimum = minimum
        self._recent: deque[int] = deque(maxlen=window)
        self.alerting = False

    def observe(self, positives: Sequence[bool]) -> dict[str, Any] | None:
        """Add predictions; return an event when the alert starts or ends."""
        self._recent.extend(int(p) for p in positives)
        if self.expected is None or len(self._recent) < self.minimum:
            return None
        n, k = len(self._recent), sum(self._recent)
        low, high = wilson_interval(k, n, confidence=0.999)
        unusual = not low <= self.expected <= high
        if unusual == self.alerting:
            return None
        self.alerting = unusual
        return {
            "event": "rate_alert" if unusual else "rate_normal",
            "window": n,
            "positive_rate": round(k / n, 4),
            "interval_999": [round(low, 4), round(high, 4)],
            "expected": round(self.expected, 4),
        }


class ModelService:
    """Everything the server calls; usable without a server (tests, batch scoring)."""

    def __init__(
        self,
        served: ServedModel,
        *,
        audit: AuditLog,
        state_dir: str | os.PathLike[str] | None = None,
        hmac_key: bytes | None = None,
        development: bool = False,
        unregistered: bool = False,
        approval: dict[str, Any] | None = None,
        traffic: TrafficRecorder | None = None,
    ) -> None:
        """Serve a model (from :func:`load_served_model`), take the state directory, record the start.

        ``audit`` is the one writer of the audit log; ``hmac_key`` pseudonymizes request ids (none:
        ids are withheld from the log, never stored raw or as an unkeyed hash). ``unregistered``
        records that the model was served although :meth:`ServedModel.unservable` refused it
        (development only: the CLI asks for an explicit flag). ``approval`` is the signed registry
        event that lets the version serve (its type, number, who, when, digest); None records that
        it serves unapproved (``--allow-unapproved``, or a library caller that checked nothing).
        ``traffic`` counts what is scored, window by window, without a raw value (for the refresh).
        """
        self.model, self.meta = served.estimator, served.meta
        self.features: list[str] = list(self.meta["features"])
        self.profile: dict[str, dict[str, Any]] = self.meta.get("feature_profile", {})
        self.threshold = float(self.meta.get("decision_threshold", 0.5))
        self.positive = str(self.meta.get("positive_label", "1"))
        self.negative = str(self.meta.get("negative_label") or f"not {self.positive}")  # the data's own word
        expected = self.meta.get("predicted_positive_rate")
        self.rates = RateMonitor(float(expected) if isinstance(expected, (int, float)) else None)
        self.audit = audit
        self.traffic = traffic
        self.state_dir = safe_state_dir(state_dir)
        self._server_lock = open(self.state_dir / SERVER_LOCK, "a+b")  # noqa: SIM115 - held while serving
        fcntl.flock(self._server_lock.fileno(), fcntl.LOCK_SH)
        self._hmac_key = hmac_key
        self._switch_lock = threading.Lock()
        self._explainer: Any = None
        self._fast = FastScorer.for_model(self.model, self.features, self.profile)
        self._labels = {"model": str(self.meta.get("name")), "version": str(self.meta.get("version"))}
        entries = read_journal(self.state_dir)
        self._journal_seen, self._journal_size = len(entries), journal_size(self.state_dir)
        last = entries[-1] if entries else None
        self._disabled = last if last is not None and last.action != "enable" else None
        metrics.DISABLED.labels(**self._labels).set(int(self._disabled is not None))
        self.audit.append(
            {
                "event": "start",
                **self._model_fields(),
                # the switch as found: actions taken while no server ran are in the operator journal
                "switch": {"disabled": self._disabled is not None, **(last.to_dict() if last else {})},
                "development_audit_key": development,
                "unregistered_model_allowed": unregistered,
                # the signed registry event that let this version serve (None: --allow-unapproved)
                "approval": approval,
                "unapproved_model_allowed": approval is None,
                "ids": "pseudonymized" if hmac_key else "withheld (no pseudonymization key)",
            }
        )
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="kfp-rai-switch-watch", daemon=True)
        self._watcher.start()

    # -- identity and the kill switch ------------------------------------------------------------

    def _model_fields(self) -> dict[str, Any]:
        return {
            "model": self.meta.get("name"),
            "model_version": self.meta.get("version"),
            "model_sha256": self.meta.get("sha256"),
        }

    def describe(self) -> dict[str, Any]:
        keys = ("name", "version", "sha256", "estimator", "target", "positive_label", "kfp_rai_version")
        registration = self.meta.get("registration") or {}
        return {
            **{k: self.meta.get(k) for k in keys},
            "features": self.features,
            "threshold": self.threshold,
            "registration": {k: registration.get(k) for k in ("status", "reason", "registered")},
        }

    def _watch(self) -> None:
        """Record operator actions as they happen, not only when the next request comes."""
        while not self._stop.wait(0.5):
            self.observe_switch()

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
                    # the switch's own fields under their own name: its journal's seq and time are not the log's
                    self.audit.append({"event": event, "switch": entry.to_dict(), **self._model_fields()})
                    self._disabled = None if entry.action == "enable" else entry
                    self._journal_seen = entry.seq
                self._journal_size = size
                metrics.DISABLED.labels(**self._labels).set(int(self._disabled is not None))
            disabled = self._disabled
        return None if disabled is None else disabled.reason or "disabled"

    def record(self, event: str, **fields: Any) -> str:
        """Append a record about this model (used by the server for what never reaches the model:
        refused tokens, oversized or unreadable bodies)."""
        if event in ("malformed", "unauthorized"):
            metrics.REJECTED.labels(**self._labels, reason=event).inc()
        return self.audit.append({"event": event, **fields, **self._model_fields()})

    def reject(self, why: str, fingerprint: str | None = None, protocol: str = "v1") -> None:
        """Record a request refused for its shape before :meth:`predict_rows` could judge it."""
        base = {**self._model_fields(), "protocol": protocol, **({"request_hmac": fingerprint} if fingerprint else {})}
        self.audit.append({"event": "rejected", "why": why, **base})
        metrics.REJECTED.labels(**self._labels, reason="schema").inc()

    def close(self) -> None:
        """Record the stop, write the final checkpoint, release the log and the state directory."""
        self._stop.set()
        if self._watcher.is_alive() and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=2)
        if not self._server_lock.closed:
            if self.traffic is not None:
                self.traffic.close()  # the open window, written whole
            self.observe_switch()  # an action taken just before the stop is still recorded
            self.audit.append({"event": "stop", **self._model_fields()})
            self.audit.close()
            self._server_lock.close()

    # -- requests ------------------------------------------------------------------------------------

    def _pseudonym(self, value: Any) -> str | None:
        if self._hmac_key is None:
            return None  # withheld: an unkeyed hash of an id is reversible by brute force
        return "hmac:" + pseudonym(value, self._hmac_key)  # the same pseudonym the pipeline's data carries

    def instances(self, payload: Any) -> list[dict[str, Any]]:
        """The V1 body's instances, checked for shape (not yet for content)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
            raise RequestRejected('the body must be {"instances": [{feature: value, ...}, ...]}')
        return list(payload["instances"])

    def frame(self, rows: Sequence[Any]) -> tuple[pd.DataFrame, list[Any]]:
        """Check every instance against the training schema; the model's input frame and the ids.

        Raises RequestRejected naming the instance, the feature and the problem, never a value.
        """
        self.check(rows)
        return self._build(rows), [row.get("id") for row in rows]

    def check(self, rows: Sequence[Any]) -> None:
        """Raise RequestRejected unless every instance fits the training schema (see :meth:`frame`)."""
        if not 1 <= len(rows) <= MAX_INSTANCES:
            raise RequestRejected(f"send between 1 and {MAX_INSTANCES} instances, got {len(rows)}")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RequestRejected(f"instance {i} is not an object")
            missing = [f for f in self.features if f not in row]
            if missing:
                raise RequestRejected(f"instance {i} lacks features {missing}")
            for f in self.features:
                value, kind = row[f], self.profile.get(f, {}).get("kind")
                if value is None:
                    continue
                # The problem is named by type only: a rejected value may be personal data.
                if kind == "numeric" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise RequestRejected(f"instance {i}: feature {f!r} must be a number, got {_kind(value)}")
                if kind == "numeric" and not is_finite_number(value):
                    raise RequestRejected(f"instance {i}: feature {f!r} must be a finite number within float range")
                if kind == "categorical" and not isinstance(value, str):
                    raise RequestRejected(f"instance {i}: feature {f!r} must be a string, got {_kind(value)}")

    def _build(self, rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
        """The model's input frame from checked instances, column by column (numbers as float,
        None as NaN): the dtypes it was trained on, without per-cell pandas conversions."""
        return pd.DataFrame(model_columns(rows, self.features, self.profile), columns=self.features)

    def _scores(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        """Positive-class probabilities of checked instances (fast path when the model allows it)."""
        if self._fast is not None:
            return self._fast.predict_proba(rows)[:, 1]
        return np.asarray(self.model.predict_proba(self._build(rows)))[:, 1]

    def _alerts(self, rows: Sequence[dict[str, Any]]) -> list[list[str]]:
        alerts: list[list[str]] = [[] for _ in range(len(rows))]
        for f, spec in self.profile.items():
            if f not in self.features:
                continue
            for i, row in enumerate(rows):
                value = row[f]
                if value is None:
                    continue
                if spec["kind"] == "numeric" and not spec["min"] <= value <= spec["max"]:
                    alerts[i].append(f"{f} outside training range [{spec['min']:g}, {spec['max']:g}]")
                    metrics.INPUT_ALERTS.labels(**self._labels, kind="out_of_range").inc()
                elif spec["kind"] == "categorical" and spec.get("values") is not None and value not in spec["values"]:
                    alerts[i].append(f"{f}: category not seen in training")
                    metrics.INPUT_ALERTS.labels(**self._labels, kind="unseen_category").inc()
        return alerts

    def reason_codes(self, frame: pd.DataFrame, top: int = 3) -> list[list[dict[str, Any]]]:
        """Per instance, the ``top`` input features that moved its score most (SHAP values on the
        model's log-odds, one-hot columns summed back to their feature), with their sign."""
        from kfp_rai.explainability import top_contributions

        if self._explainer is None:
            from kfp_rai.explainability import tree_explainer

            self._explainer = tree_explainer(self.model)
        return top_contributions(self._explainer, self.model, frame, self.features, top=top)

    def warm_up(self) -> None:
        """Build the reason-code explainer ahead of the first request that asks for one."""
        try:
            self.reason_codes(pd.DataFrame([self._example()], columns=self.features), top=1)
        except Exception:  # noqa: BLE001 - a warm-up that fails costs the first request's time, nothing else
            logger.warning("could not prepare reason codes ahead of time", exc_info=True)

    def _example(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for f in self.features:
            spec = self.profile.get(f, {})
            if spec.get("kind") == "numeric":
                row[f] = (spec["min"] + spec["max"]) / 2
            else:
                row[f] = (spec.get("values") or [np.nan])[0]
        return row

    def predict_rows(
        self,
        rows: Sequence[Any],
        *,
        fingerprint: str | None = None,
        protocol: str = "v1",
        reasons: bool = False,
    ) -> dict[str, Any]:
        """Judge, score and record one request's instances.

        Returns ``{"predictions": [...], "model_version", "audit"}``; each prediction holds the
        positive-class probability, the label at the model's threshold, its input alerts and, when
        asked, reason codes. Raises ServingDisabled (kill switch) or RequestRejected (schema); both
        are recorded before they are raised.
        """
        (outcome,) = self.predict_batch([Job(rows, fingerprint, protocol, reasons)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def predict_batch(self, jobs: Sequence[Job]) -> list[dict[str, Any] | RequestRejected | ServingDisabled]:
        """Judge, score and record several requests at once: each is judged on its own (a bad one
        is rejected alone), the valid ones are scored in one model call, and every record is
        written with one fsync before any answer leaves. Per request, the result of
        :meth:`predict_rows` or the exception it would raise, in order."""
        reason = self.observe_switch()
        outcomes: list[dict[str, Any] | RequestRejected | ServingDisabled] = []
        events: list[dict[str, Any]] = []
        valid: list[int] = []
        for n, job in enumerate(jobs):
            base = self._base(job)
            if reason is not None:
                events.append({"event": "refused", "why": f"disabled: {reason}", **base})
                outcomes.append(ServingDisabled(f"model disabled: {reason}"))
                metrics.REFUSED.labels(**self._labels).inc()
                continue
            try:
                self.check(job.rows)
            except RequestRejected as exc:
                events.append({"event": "rejected", "why": str(exc), **base})
                outcomes.append(exc)
                metrics.REJECTED.labels(**self._labels, reason="schema").inc()
                continue
            valid.append(n)
            outcomes.append({})  # filled below
        owners: dict[int, int] = {}  # outcome index -> index of its "predict" event
        if valid:
            whole = [row for n in valid for row in jobs[n].rows]
            scores = self._scores(whole)  # one model call for all
            alerts = self._alerts(whole)
            if self.traffic is not None:
                self.traffic.add(whole, scores, alerts)
            start = 0
            for n in valid:
                job, stop = jobs[n], start + len(jobs[n].rows)
                ids = [row.get("id") for row in job.rows]
                codes: list[Any] | None = None
                if job.reasons:
                    try:
                        codes = self.reason_codes(self._build(whole[start:stop]))
                    except Exception:  # noqa: BLE001 - explanations are extra: the prediction still stands
                        logger.warning("reason codes unavailable for this model", exc_info=True)
                        codes = [None] * (stop - start)  # null: asked for, not available
                positives = [bool(p >= self.threshold) for p in scores[start:stop]]
                predictions = [
                    {
                        "probability": round(float(p), 6),
                        "label": self.positive if positive else self.negative,
                        "alerts": a,
                        **({"reason_codes": codes[i]} if codes is not None else {}),
                    }
                    for i, (p, positive, a) in enumerate(
                        zip(scores[start:stop], positives, alerts[start:stop], strict=True)
                    )
                ]
                owners[n] = len(events)
                events.append(
                    {
                        "event": "predict",
                        **self._base(job),
                        "ids": [self._pseudonym(i) if i is not None else None for i in ids],
                        "predictions": [[p["probability"], p["label"]] for p in predictions],
                        "alerts": alerts[start:stop],
                    }
                )
                rate_event = self.rates.observe(positives)
                if rate_event is not None:
                    events.append({**rate_event, **self._model_fields()})
                    if rate_event["event"] == "rate_alert":
                        metrics.RATE_ALERTS.labels(**self._labels).inc()
                        logger.warning("unusual prediction rate: %s", rate_event)
                metrics.PREDICTIONS.labels(**self._labels).inc(len(predictions))
                outcomes[n] = {"predictions": predictions, "model_version": self.meta.get("version")}
                start = stop
        macs = self.audit.append_many(events) if events else []
        for n, index in owners.items():
            result = outcomes[n]
            if isinstance(result, dict):  # always: owners index only scored requests
                result["audit"] = macs[index]
        return outcomes

    def _base(self, job: Job) -> dict[str, Any]:
        fingerprint = {"request_hmac": job.fingerprint} if job.fingerprint else {}
        return {**self._model_fields(), "protocol": job.protocol, **fingerprint}

    def predict(self, payload: Any, *, fingerprint: str | None = None, reasons: bool = False) -> dict[str, Any]:
        """A V1 body (``{"instances": [...]}``): :meth:`predict_rows` after checking its shape."""
        try:
            rows = self.instances(payload)
        except RequestRejected as exc:
            self.reject(str(exc), fingerprint)
            raise
        return self.predict_rows(rows, fingerprint=fingerprint, reasons=reasons)
