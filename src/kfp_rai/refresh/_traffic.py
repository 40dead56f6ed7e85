"""What a served model saw, kept without a single raw value: per time window, its inputs counted
over the champion's reference bins, its score histogram and share of positive predictions, its
input alerts; written by ``kfp-rai serve`` as ``traffic-*.json``, keyed with the audit key (an
edited window is refused), atomically. A refresh reads a directory of them as its current data
(no labels: drift only); labels that arrive later are joined with the scores the audit trail
holds, by the pseudonymized request id (:func:`late_labels`), so the served model's per-group
performance is measured without keeping any feature value."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kfp_rai.core.files import atomic_write_bytes
from kfp_rai.errors import DataValidationError, IntegrityError
from kfp_rai.refresh._predictions import PredictionSummary
from kfp_rai.stats.summary import ColumnBins, ColumnSummary, DataSummary

KIND = "kfp_rai.traffic_summary"
PATTERN = "traffic-*.json"
MAX_FILE_BYTES = 16 << 20


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _mac(key: bytes, body: Mapping[str, Any]) -> str:
    return hmac.new(hashlib.sha256(b"kfp-rai traffic summary\0" + key).digest(), _canonical(body), "sha256").hexdigest()


class TrafficRecorder:
    """Counts what a server scores, window by window, over the champion's reference bins.

    ``add`` is called once per batch of scored instances; a window closes (and is written) when a
    batch arrives after its end, and at :meth:`close`. Thread-safe; a few microseconds per instance.
    """

    def __init__(
        self,
        reference: DataSummary,
        features: Sequence[str],
        threshold: float,
        directory: Path,
        key: bytes,
        model: Mapping[str, Any],
        window_seconds: float = 3600.0,
    ) -> None:
        self._bins = [reference.columns[f].bins for f in features if f in reference.columns]
        self._edges = {b.column: np.asarray(b.edges, dtype=float) for b in self._bins if b.kind == "numeric"}
        self._codes = {
            b.column: {c: i for i, c in enumerate(b.categories)} for b in self._bins if b.kind == "categorical"
        }
        self._threshold = threshold
        self._directory = Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._key = key
        self._model = {k: str(model.get(k)) for k in ("name", "version", "sha256")}
        self._window = float(window_seconds)
        self._lock = threading.Lock()
        self._reset(time.time())

    def _reset(self, start: float) -> None:
        self._start = start
        self._counts = {
            b.column: np.zeros(len(b.edges) + 2 if b.kind == "numeric" else len(b.categories) + 2, dtype=np.int64)
            for b in self._bins
        }
        self._scores = np.zeros(20, dtype=np.int64)
        self._positives = 0
        self._rows = 0
        self._alerts: Counter[str] = Counter()

    def add(self, rows: Sequence[Mapping[str, Any]], scores: np.ndarray, alerts: Sequence[Sequence[str]]) -> None:
        now = time.time()
        with self._lock:
            if now >= self._start + self._window:
                self._flush(now)
            for column, edges in self._edges.items():
                values = np.array([r.get(column) for r in rows], dtype=float)  # None -> NaN
                ok = values[np.isfinite(values)]
                counts = self._counts[column]
                counts[:-1] += np.bincount(np.searchsorted(edges, ok, side="right"), minlength=len(edges) + 1)
                counts[-1] += len(values) - len(ok)
            for column, codes in self._codes.items():
                counts = self._counts[column]
                other, missing = len(codes), len(codes) + 1
                for r in rows:
                    value = r.get(column)
                    counts[missing if value is None else codes.get(str(value), other)] += 1
            clipped = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
            self._scores += np.bincount(np.minimum((clipped * 20).astype(np.int64), 19), minlength=20)
            self._positives += int(np.count_nonzero(clipped >= self._threshold))
            self._rows += len(rows)
            self._alerts.update(_alert_kind(a) for r in alerts for a in r)

    def _flush(self, now: float) -> Path | None:
        path = None
        if self._rows:
            path = write_window(self._directory, self._key, self.window_body(now))
        self._reset(now)
        return path

    def window_body(self, end: float) -> dict[str, Any]:
        def iso(t: float) -> str:
            return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")

        return {
            "kind": KIND,
            "version": 1,
            "model": self._model,
            "window": {"start": iso(self._start), "end": iso(end)},
            "rows": self._rows,
            "inputs": [{"bins": b.to_dict(), "counts": self._counts[b.column].tolist()} for b in self._bins],
            "predictions": PredictionSummary(
                tuple(int(c) for c in self._scores), self._positives, self._threshold
            ).to_dict(),
            "alerts": dict(sorted(self._alerts.items())),
        }

    def close(self) -> Path | None:
        """Write the open window (if it saw anything)."""
        with self._lock:
            return self._flush(time.time())


def _alert_kind(alert: str) -> str:
    """``age: out of range`` or ``workclass: unseen category``: the feature and the kind, no value."""
    feature = alert.split(" outside ", 1)[0] if " outside " in alert else alert.split(":", 1)[0]
    return f"{feature}: {'out of range' if ' outside ' in alert else 'unseen category'}"


def write_window(directory: Path, key: bytes, body: Mapping[str, Any]) -> Path:
    """One window's file, keyed and written atomically (a reader sees it whole or not at all)."""
    stamp = str(body["window"]["start"]).replace(":", "").replace("+0000", "Z")
    path = Path(directory) / f"traffic-{stamp}-{os.getpid()}-{time.monotonic_ns()}.json"
    atomic_write_bytes(path, json.dumps({**body, "mac": _mac(key, body)}, indent=1, sort_keys=True).encode() + b"\n")
    return path


def read_windows(directory: Path, key: bytes, model_sha256: str) -> list[dict[str, Any]]:
    """The windows of one model version (by sha256) in a directory, each checked against its MAC.

    Raises
    ------
    IntegrityError
        A window was edited, or keyed with another key.
    DataValidationError
        No window of this version is there.
    """
    windows = []
    others = 0
    for path in sorted(Path(directory).glob(PATTERN)):
        data = path.read_bytes()
        if len(data) > MAX_FILE_BYTES:
            raise DataValidationError(f"{path.name} is over {MAX_FILE_BYTES >> 20} MiB: not a traffic summary")
        try:
            stored = json.loads(data)
            body = {k: v for k, v in stored.items() if k != "mac"}
        except (ValueError, AttributeError) as exc:
            raise IntegrityError(f"{path.name} is not a traffic summary ({exc})") from exc
        if body.get("kind") != KIND or not hmac.compare_digest(str(stored.get("mac")), _mac(key, body)):
            raise IntegrityError(
                f"{path.name} fails its check with the audit key: it was edited, or written with another key"
            )
        if body["model"].get("sha256") != model_sha256:
            others += 1
            continue
        windows.append(body)
    if not windows:
        raise DataValidationError(
            f"{directory} holds no traffic summary of this model version ({others} of other versions): serve it "
            "(kfp-rai serve writes one per window) or pass the current data itself"
        )
    return windows


def merge_windows(windows: Sequence[Mapping[str, Any]]) -> tuple[DataSummary, PredictionSummary, dict[str, Any]]:
    """The windows as one summary of inputs (counts only: no sketch, so no KS distance), one of
    predictions, and what they span."""
    columns: dict[str, ColumnSummary] = {}
    predictions: PredictionSummary | None = None
    rows = 0
    alerts: Counter[str] = Counter()
    for body in windows:
        for item in body["inputs"]:
            bins = ColumnBins.from_dict(item["bins"])
            counts = np.asarray(item["counts"], dtype=np.int64)
            part = ColumnSummary(bins, counts, n=int(counts[:-1].sum()))
            columns[bins.column] = columns[bins.column].merge(part) if bins.column in columns else part
        part_predictions = PredictionSummary.from_dict(body["predictions"])
        predictions = part_predictions if predictions is None else predictions.merge(part_predictions)
        rows += int(body["rows"])
        alerts.update(body.get("alerts", {}))
    if predictions is None:  # read_windows returns at least one; never judge an empty traffic summary
        raise DataValidationError("no traffic window holds predictions")
    span = {
        "windows": len(windows),
        "from": min(str(w["window"]["start"]) for w in windows),
        "to": max(str(w["window"]["end"]) for w in windows),
        "alerts": dict(alerts),
    }
    return DataSummary(rows, columns), predictions, span


def late_labels(
    audit_log: str,
    labels: str,
    *,
    model: Mapping[str, Any],
    sensitive: Sequence[str],
    audit_key: bytes,
    hmac_key: bytes,
) -> tuple[dict[str, Any], dict[str, int]]:
    """Per-group counts of the served model on the requests whose labels arrived later.

    ``labels`` (csv or parquet) holds ``id`` (the request's ``id``, as the caller sent it), ``label``
    (the target's value) and optionally the sensitive attributes a label provider knows. Each id is
    pseudonymized with the serving key, as the audit trail records it, and joined with the score the
    (verified) audit trail holds for this model version: no feature value is needed or kept.
    Returns the counts (:func:`kfp_rai.validation._scored.count_batch`) and how many labels matched.
    """
    import pyarrow as pa

    from kfp_rai.core.tables import read_table
    from kfp_rai.discovery import pseudonym
    from kfp_rai.serving._audit import verified_records
    from kfp_rai.validation._scored import ScoredColumns, add_counts, count_batch

    scores: dict[str, float] = {}
    for record in verified_records(audit_log, audit_key):
        if record.get("event") != "predict" or record.get("model_sha256") != model.get("sha256"):
            continue
        for pseudonymized, prediction in zip(record.get("ids", []), record.get("predictions", []), strict=False):
            if pseudonymized:
                scores[str(pseudonymized)] = float(prediction[0])  # the latest prediction of an id counts
    table = read_table(labels, text_columns=["id"])
    missing = [c for c in ("id", "label") if c not in table.columns]
    if missing:
        raise DataValidationError(f"the labels file {labels} lacks the columns {missing} (id, label, and optionally "
                                  f"the sensitive attributes {list(sensitive)})")  # fmt: skip
    keyed = table["id"].map(lambda v: "hmac:" + pseudonym(v, hmac_key))
    found = keyed.isin(scores.keys()) & table["label"].notna()
    joined = table[found.to_numpy()]
    present = tuple(a for a in sensitive if a in joined.columns)
    threshold = float(model.get("decision_threshold", 0.5))
    score = keyed[found].map(scores).to_numpy(dtype=float)
    y = (joined["label"].astype(str) == str(model.get("positive_label"))).to_numpy().astype(np.int64)
    batch = pa.table(
        {
            "y": y,
            "__prediction__": (score >= threshold).astype(np.int64),
            "__score__": score,
            **{a: pa.array([None if v is None or v != v else str(v) for v in joined[a]], pa.string()) for a in present},
        }  # fmt: skip
    )
    counts: dict[str, Any] = {}
    if batch.num_rows:
        add_counts(counts, count_batch(batch, ScoredColumns("y", "__prediction__", present, "__score__", None)))
    return counts, {"labels": len(table), "matched": int(found.sum()), "sensitive": len(present)}
