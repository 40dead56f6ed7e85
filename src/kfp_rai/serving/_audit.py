"""The audit trail: append-only JSON lines, each record chained to the previous by sha256.

A removed, reordered or edited record is detectable (:func:`verify_audit_log`). Records hold
request hashes and pseudonymized ids, never raw feature values.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from kfp_rai.core.clock import utc_now
from kfp_rai.errors import IntegrityError

GENESIS = "0" * 64


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


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
            record = {"seq": self._seq + 1, "time": utc_now("milliseconds"), **event, "prev": self._last}
            record["hash"] = hashlib.sha256(canonical_json(record)).hexdigest()
            with open(self.path, "ab") as fh:
                fh.write(canonical_json(record) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._seq += 1
            self._last = str(record["hash"])
            return self._last


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
            if hashlib.sha256(canonical_json(record)).hexdigest() != claimed:
                return False, count, f"line {number} was altered after it was written"
            prev = claimed
            count += 1
    return True, count, f"{count} records, chain intact"
