"""The audit trail: append-only JSON lines chained by a keyed MAC, anchored by checkpoints.

Threat model: someone can write (edit, truncate, replace) the log file but does not hold the
audit key. Each record carries ``prev`` (the previous record's MAC) and its own ``mac`` =
HMAC-SHA256 over the record, so editing, reordering or removing a record breaks the chain, and
recomputing the chain needs the key. Removing records from the *end*, or emptying the file, leaves
a valid chain: that is what checkpoints catch. A checkpoint (record count and the MAC of the last
record, itself MAC'd and chained) is written to a separate file at intervals and at shutdown;
keep that file where the log's writers cannot write (another volume, another user, shipped off
the host). A log's first record names the log (a random id) and where its checkpoints are; every
checkpoint carries that id. The verifier checks the chain and the latest checkpoint, and fails when
the checkpoints cannot be found or belong to another log: a cut log never passes for lack of them.

The MAC covers the exact stored bytes: a line is accepted only if it is the canonical serialization
of what it parses to, so a duplicated key, odd spacing or a non-canonical number (which other
parsers could read differently) is refused. Which log lives at a path, and where its checkpoints
are, is also recorded apart from the log, in an index beside the checkpoints (keyed with the audit
key, :class:`LogIndex`): another genuine log of the same key swapped in at that path is refused.

One writer per log: the writer opens the log file itself (never through a symbolic link) and holds
an exclusive lock on it for its whole life, writing through that same descriptor; a second server
on the same file, by any name (a hard link included), is refused. A log that is missing at start-up
while its checkpoints say it held records (moved, deleted) is refused; a new log is started only
when asked for. Records never hold raw feature values or raw identifiers (see the serving app).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_rai.core.clock import utc_now
from kfp_rai.core.files import PathLike, read_key_file
from kfp_rai.errors import IntegrityError, InvalidParameterError

GENESIS = "0" * 64
AUDIT_KEY_ENV, AUDIT_KEY_FILE_ENV = "KFP_RAI_AUDIT_KEY", "KFP_RAI_AUDIT_KEY_FILE"
MIN_KEY_BYTES = 16
DEVELOPMENT_KEY = b"kfp-rai public development audit key: anyone can rewrite a log keyed with it"
CHECKPOINT_SUFFIX = ".checkpoints"
INDEX_NAME = "audit-logs.json"
RESERVED = frozenset({"seq", "time", "prev", "mac"})  # the log's own fields: never taken from an event


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def audit_key_from_env() -> bytes | None:
    """The audit key from ``KFP_RAI_AUDIT_KEY`` or the file named by ``KFP_RAI_AUDIT_KEY_FILE``."""
    if value := os.environ.get(AUDIT_KEY_ENV):
        key = value.strip().encode("utf-8")
    elif path := os.environ.get(AUDIT_KEY_FILE_ENV):
        key = read_key_file(path, f"{AUDIT_KEY_FILE_ENV}=").strip()
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise InvalidParameterError(
            f"the audit key has {len(key)} bytes, fewer than {MIN_KEY_BYTES}: "
            "create one with `kfp-rai audit new-key FILE`"
        )
    return key


def _index_key(key: bytes) -> bytes:
    return hmac.new(key, b"kfp-rai audit log index", hashlib.sha256).digest()


def _keys(key: bytes) -> tuple[bytes, bytes]:
    """Separate keys for records and checkpoints, derived from the one audit key."""
    return (
        hmac.new(key, b"kfp-rai audit records", hashlib.sha256).digest(),
        hmac.new(key, b"kfp-rai audit checkpoints", hashlib.sha256).digest(),
    )


def _fingerprint_key(key: bytes) -> bytes:
    return hmac.new(key, b"kfp-rai audit request fingerprints", hashlib.sha256).digest()


def _mac(key: bytes, body: dict[str, Any]) -> str:
    return hmac.new(key, canonical_json(body), hashlib.sha256).hexdigest()


def default_checkpoints(log: PathLike) -> Path:
    return Path(str(log) + CHECKPOINT_SUFFIX)


@dataclass(frozen=True)
class AuditCheck:
    """What verifying a log found: whether it is intact, its records, the latest checkpoint's count."""

    ok: bool
    records: int
    checkpointed: int | None
    message: str


class LogIndex:
    """Which log was started at which path, and where its checkpoints are: recorded apart from the
    logs (beside the checkpoints, in the state directory) and keyed with the audit key, so the log's
    own writer can neither swap another genuine log in nor point the log at other checkpoints.

    One JSON file, ``{"logs": {resolved path: {"log_id", "checkpoints"}}, "mac"}``, replaced atomically.
    """

    def __init__(self, path: PathLike, key: bytes) -> None:
        self.path = Path(path)
        self._key = _index_key(key)

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            stored = json.loads(self.path.read_bytes())
            logs, claimed = stored["logs"], str(stored["mac"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"the audit log index {self.path} is unreadable ({type(exc).__name__})") from exc
        if not hmac.compare_digest(_mac(self._key, {"logs": logs}), claimed):
            raise IntegrityError(
                f"the audit log index {self.path} was altered, or written with another audit key: keep it as evidence"
            )
        return dict(logs)

    def get(self, log: PathLike) -> dict[str, str] | None:
        return self._read().get(str(Path(log).resolve()))

    def put(self, log: PathLike, log_id: str, checkpoints: PathLike) -> None:
        from kfp_rai.core.files import atomic_write_bytes

        logs = self._read()
        logs[str(Path(log).resolve())] = {"log_id": log_id, "checkpoints": str(Path(checkpoints).absolute())}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_bytes(self.path, canonical_json({"logs": logs, "mac": _mac(self._key, {"logs": logs})}) + b"\n")
        os.chmod(self.path, 0o600)


def index_for(state_dir: PathLike) -> Path:
    """Where the audit log index lives in a state directory (beside the default checkpoints)."""
    return Path(state_dir) / "checkpoints" / INDEX_NAME


def _read_chain(path: Path, key: bytes, what: str) -> tuple[list[dict[str, Any]], str | None]:
    """Records of a MAC chain (log or checkpoints) and the first problem, if any."""
    records: list[dict[str, Any]] = []
    prev = GENESIS
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                record = json.loads(line)
                stored_exactly = canonical_json(record) + b"\n" == line
                claimed = record.pop("mac")
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, AttributeError, TypeError, RecursionError):
                return records, f"{what} line {number} is not a record of this trail"
            if not stored_exactly:  # the MAC covers these bytes, not another parser's reading of them
                return records, (
                    f"{what} line {number} is not stored as written (duplicate keys, spacing or number form changed)"
                )
            if record.get("prev") != prev:
                return records, f"{what} line {number} does not follow line {number - 1} (removed or reordered)"
            if not hmac.compare_digest(_mac(key, record), str(claimed)):
                return records, f"{what} line {number} was altered, or written without the audit key"
            prev = str(claimed)
            records.append({**record, "mac": claimed})
    return records, None


def _head(log: Path) -> dict[str, Any] | None:
    """The log's first record, if it is a creation record (read without trusting it yet)."""
    try:
        with open(log, "rb") as fh:
            first = json.loads(fh.readline() or b"null")
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return first if isinstance(first, dict) and first.get("event") == "audit_log_created" else None


def verify_audit_log(
    path: PathLike,
    key: bytes,
    checkpoints: PathLike | None = None,
    *,
    index: PathLike | None = None,
    log_id: str | None = None,
) -> AuditCheck:
    """Check a log's MAC chain and its latest checkpoint.

    Detects an edited, inserted, removed or reordered record, a chain recomputed without the key,
    and records removed from the end or a log emptied or replaced. ``checkpoints`` defaults to the
    file the :class:`LogIndex` at ``index`` records for this path, else the one the log's creation
    record names; missing checkpoints, or another log's, fail the check. The log's identity is
    checked against ``log_id`` or the index's record: another genuine log of the same key fails.
    """
    log = Path(path)
    record_key, checkpoint_key = _keys(key)
    if not log.exists():
        return AuditCheck(False, 0, None, f"no audit log at {log}")
    try:
        known = LogIndex(index, key).get(log) if index is not None else None
    except IntegrityError as exc:
        return AuditCheck(False, 0, None, str(exc))
    expected = log_id or (known or {}).get("log_id")
    if checkpoints is None and known:
        checkpoints = known["checkpoints"]
    records, problem = _read_chain(log, record_key, "log")
    if problem:
        return AuditCheck(False, len(records), None, problem)
    if not records:
        return AuditCheck(False, 0, None, "the log was emptied (a log starts with its creation record)")
    head = records[0]
    if head.get("event") != "audit_log_created" or head.get("seq") != 1:
        return AuditCheck(False, len(records), None, "log line 1 is not the log's creation record")
    for number, record in enumerate(records, start=1):
        if record.get("seq") != number:
            return AuditCheck(False, len(records), None, f"log line {number} carries sequence {record.get('seq')}")
    if expected and head.get("log_id") != expected:
        where = "--log-id" if log_id else f"the index {index}"
        return AuditCheck(
            False,
            len(records),
            None,
            f"this is not the log started here: {where} records log {expected}, the file is log {head.get('log_id')} "
            "(another genuine log swapped in?)",
        )
    cp_path = Path(checkpoints) if checkpoints else Path(str(head.get("checkpoints", "")))
    if not cp_path.is_file():
        return AuditCheck(
            False,
            len(records),
            None,
            f"{len(records)} records, chain intact, but the log's checkpoints ({cp_path}) are missing, so records "
            "removed from the end cannot be ruled out: pass --checkpoints FILE where they are kept",
        )
    marks, problem = _read_chain(cp_path, checkpoint_key, "checkpoint")
    if problem:
        return AuditCheck(False, len(records), None, problem)
    if not marks or any(m.get("log_id") != head.get("log_id") for m in marks):
        return AuditCheck(False, len(records), None, f"{cp_path} holds no checkpoint of this log (another log's?)")
    count = int(marks[-1]["count"])
    if len(records) < count:
        return AuditCheck(
            False,
            len(records),
            count,
            f"the log was cut to {len(records)} records: its checkpoint of {marks[-1]['time']} records {count}",
        )
    if not hmac.compare_digest(records[count - 1]["mac"], str(marks[-1]["head"])):
        return AuditCheck(
            False, len(records), count, f"the log's first {count} records are not those its checkpoint recorded"
        )
    after = len(records) - count
    tail = f"; {after} records after it (appended since)" if after else ""
    identity = (
        f"; log {expected} as {'asked' if log_id else 'the index records'}"
        if expected
        else "; its identity not checked (no index records it: pass --log-id)"
    )
    return AuditCheck(
        True,
        len(records),
        count,
        f"{len(records)} records, chain intact, checkpoint of {count} matches{tail}{identity}",
    )


def _open_locked(path: Path, *, create: bool) -> int:
    """The log file itself, opened for appending (never through a symbolic link) and locked
    exclusively: the lock is on the file, so a second writer through any name — a hard link too —
    is refused. Returns the descriptor every record is written through."""
    import fcntl

    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | (os.O_CREAT | os.O_EXCL if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise IntegrityError(f"a new audit log was asked for, but {path} exists: nothing is overwritten") from None
    except OSError as exc:
        if path.is_symlink():
            raise IntegrityError(
                f"audit log {path} is a symbolic link: name the log file itself (a link could lead anywhere)"
            ) from None
        raise IntegrityError(f"cannot open the audit log {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise IntegrityError(
            f"audit log {path} is in use by another server: one writer per log (give this one its own log)"
        ) from None
    return fd


class AuditLog:
    """The one writer of an audit log.

    Parameters
    ----------
    path : path
        The log (JSON lines).
    key : bytes
        The audit key (``KFP_RAI_AUDIT_KEY``); :data:`DEVELOPMENT_KEY` only for development.
    checkpoints : path, optional
        Where checkpoints go; keep it apart from the log. A new log records it in its first record
        (default ``<log>.checkpoints``); an existing log keeps the one it recorded, and naming
        another is refused.
    create : bool
        Start a new log. Refused if the log or its checkpoints already exist (nothing is
        overwritten); without it, a missing log is refused, as is one whose checkpoints are missing.
    checkpoint_every : int
        Write a checkpoint after this many records (and always at :meth:`close`).
    """

    def __init__(
        self,
        path: PathLike,
        *,
        key: bytes,
        checkpoints: PathLike | None = None,
        create: bool = False,
        checkpoint_every: int = 100,
        index: PathLike | None = None,
    ) -> None:
        self.path = Path(path).absolute()
        self._index = LogIndex(index, key) if index is not None else None
        head = None if create else _head(self.path)
        known = self._index.get(self.path) if self._index is not None and not create else None
        if known and head and head.get("log_id") != known["log_id"]:
            raise IntegrityError(
                f"audit log {self.path} is not the log started here (the index records log {known['log_id']}, "
                f"the file is log {head.get('log_id')}): keep both as evidence, start a new log"
            )
        if known:
            recorded: Path | None = Path(known["checkpoints"])
        else:
            recorded = Path(str(head["checkpoints"])) if head and head.get("checkpoints") else None
        if recorded and checkpoints and Path(checkpoints).absolute() != recorded:
            raise IntegrityError(
                f"audit log {self.path} keeps its checkpoints in {recorded}: name that file, or start a new log"
            )
        self.checkpoints = (Path(checkpoints) if checkpoints else recorded or default_checkpoints(self.path)).absolute()
        self._log_id = str(head["log_id"]) if head else uuid.uuid4().hex
        self._development = key == DEVELOPMENT_KEY
        self._fingerprint_key = _fingerprint_key(key)
        self._key = key
        self._record_key, self._checkpoint_key = _keys(key)
        self._every = checkpoint_every
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.checkpoints.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if create and self.checkpoints.exists():
            raise IntegrityError(
                f"a new audit log was asked for, but {self.checkpoints} exists: nothing is overwritten"
            )
        if not create and not self.path.exists() and not self.path.is_symlink():
            raise IntegrityError(
                f"no audit log at {self.path}: if it was moved or deleted keep its checkpoints as evidence; "
                "to start a new log, ask for one (kfp-rai serve --new-audit-log)"
            )
        self._fd = _open_locked(self.path, create=create)
        try:
            self._open(create)
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise

    def _open(self, create: bool) -> None:
        if create:
            self._seq, self._last, self._checkpoint_prev = 0, GENESIS, GENESIS
            self.append({"event": "audit_log_created", "log_id": self._log_id, "checkpoints": str(self.checkpoints)})
            self._write_checkpoint()
            if self._index is not None:
                self._index.put(self.path, self._log_id, self.checkpoints)
            return
        check = verify_audit_log(self.path, self._key, self.checkpoints)
        if not check.ok:
            raise IntegrityError(
                f"audit log {self.path} fails verification ({check.message}): keep it as evidence, start a new one"
            )
        records, _ = _read_chain(self.path, self._record_key, "log")
        marks, _ = _read_chain(self.checkpoints, self._checkpoint_key, "checkpoint")
        self._seq = len(records)
        self._last = str(records[-1]["mac"]) if records else GENESIS
        self._checkpoint_prev = str(marks[-1]["mac"]) if marks else GENESIS
        if self._index is not None and self._index.get(self.path) is None:
            self._index.put(self.path, self._log_id, self.checkpoints)  # first seen here: recorded from now on

    def append(self, event: dict[str, Any]) -> str:
        """Append a record (fsynced before returning); return its MAC."""
        return self.append_many([event])[0]

    def append_many(self, events: Sequence[dict[str, Any]]) -> list[str]:
        """Append records in order with one write and one fsync (a group commit: each is durable
        before the call returns, as with :meth:`append`); return their MACs."""
        with self._lock:
            lines, macs, seq, last = [], [], self._seq, self._last
            for event in events:
                if clash := RESERVED & event.keys():
                    raise ValueError(f"an audit event may not set the log's own fields {sorted(clash)}")
                seq += 1
                record = {"seq": seq, "time": utc_now("milliseconds"), **event, "prev": last}
                record["mac"] = last = _mac(self._record_key, record)
                lines.append(canonical_json(record) + b"\n")
                macs.append(last)
            data = b"".join(lines)
            while data:  # through the locked descriptor, never the path: a renamed-in file gets nothing
                data = data[os.write(self._fd, data) :]
            os.fsync(self._fd)
            crossed = seq // self._every > self._seq // self._every
            self._seq, self._last = seq, last
            if crossed:
                self._write_checkpoint()
            return macs

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fingerprint(self, data: bytes) -> str | None:
        """A keyed fingerprint of a request's bytes (proves which request a record is about to
        whoever holds both); None with the public development key, where it could be brute-forced."""
        if self._development:
            return None
        return hmac.new(self._fingerprint_key, data, hashlib.sha256).hexdigest()

    def _write_checkpoint(self) -> None:
        mark = {
            "log_id": self._log_id,
            "count": self._seq,
            "head": self._last,
            "time": utc_now("milliseconds"),
            "prev": self._checkpoint_prev,
        }
        mark["mac"] = _mac(self._checkpoint_key, mark)
        with open(self.checkpoints, "ab") as fh:
            fh.write(canonical_json(mark) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(self.checkpoints, 0o600)
        self._checkpoint_prev = str(mark["mac"])

    def checkpoint(self) -> None:
        with self._lock:
            self._write_checkpoint()

    def close(self) -> None:
        """Write a final checkpoint and release the log."""
        with self._lock:
            if self._fd >= 0:
                self._write_checkpoint()
                os.close(self._fd)
                self._fd = -1


def verified_records(
    path: PathLike, key: bytes, checkpoints: PathLike | None = None, *, index: PathLike | None = None
) -> list[dict[str, Any]]:
    """Every record of a log whose chain and latest checkpoint verify (:func:`verify_audit_log`);
    a log that does not verify is refused, never partly read.

    Raises
    ------
    IntegrityError
        The log does not verify (the reason in one line).
    """
    check = verify_audit_log(path, key, checkpoints, index=index)
    if not check.ok:
        raise IntegrityError(f"the audit log {path} does not verify: {check.message}")
    records, problem = _read_chain(Path(path), _keys(key)[0], "log")
    if problem:  # changed since the check
        raise IntegrityError(f"the audit log {path} changed while it was read: {problem}")
    return records
