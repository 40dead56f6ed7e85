"""The kill switch, its operator journal, and the state directory they live in.

The state directory defaults to a per-user place (``$KFP_RAI_STATE_DIR``, else
``$XDG_STATE_HOME/kfp-rai``, else ``~/.local/state/kfp-rai``) created with mode 0700; one that is
group/world-writable or owned by another user is refused, since whoever can write it can switch
serving off or on.

Every operator action (disable, enable) is appended to ``operator.jsonl`` there, numbered, with
who, when and why; the switch's state is the last entry. A running server records each new entry
in its audit trail as soon as it sees it (it watches the journal, and checks it before every
request), so an action is never lost between two requests. A journal whose last entry cannot be
read counts as disabled: serving fails closed until an operator appends a readable entry. A running
server holds a shared lock on ``server.lock``, so the switch can say whether anyone is listening.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from kfp_rai.core.clock import utc_now
from kfp_rai.core.files import PathLike
from kfp_rai.core.state import safe_state_dir
from kfp_rai.errors import InvalidParameterError

JOURNAL_FILE = "operator.jsonl"
SERVER_LOCK = "server.lock"
MAX_REASON_CHARS = 500


def server_running(state_dir: PathLike) -> bool:
    """Whether a serving process holds this state directory's lock."""
    import fcntl

    lock = Path(state_dir) / SERVER_LOCK
    if not lock.exists():
        return False
    with open(lock, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


@dataclass(frozen=True)
class OperatorAction:
    """One entry of the operator journal."""

    seq: int
    action: str  # "disable" | "enable" | "unreadable"
    reason: str
    time: str
    by: str

    def to_dict(self) -> dict[str, str | int]:
        return {"seq": self.seq, "action": self.action, "reason": self.reason, "time": self.time, "by": self.by}


def _parse(seq: int, line: bytes) -> OperatorAction:
    try:
        data = json.loads(line)
        if not isinstance(data, dict) or data.get("action") not in ("disable", "enable"):
            raise ValueError("not an operator action")
        return OperatorAction(
            seq, str(data["action"]), str(data.get("reason", "")), str(data.get("time", "")), str(data.get("by", ""))
        )
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        reason = f"operator journal entry {seq} is unreadable ({type(exc).__name__}): serving stays off"
        return OperatorAction(seq, "unreadable", reason, "", "")


def read_journal(state_dir: PathLike, after: int = 0) -> list[OperatorAction]:
    """The journal's entries numbered above ``after`` (numbering is by line, from 1)."""
    path = Path(state_dir) / JOURNAL_FILE
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [OperatorAction(after + 1, "unreadable", f"operator journal unreadable ({exc.strerror})", "", "")]
    return [_parse(n, line) for n, line in enumerate(lines, start=1) if n > after]


def journal_size(state_dir: PathLike) -> int:
    """The journal's size in bytes (cheap: a stat), to notice new entries."""
    try:
        return (Path(state_dir) / JOURNAL_FILE).stat().st_size
    except FileNotFoundError:
        return 0


def _append(state_dir: PathLike | None, action: str, reason: str, by: str) -> bool:
    directory = safe_state_dir(state_dir)
    entry = {"action": action, "reason": reason, "time": utc_now(), "by": by or os.environ.get("USER", "")}
    line = json.dumps(entry, sort_keys=True).encode("utf-8") + b"\n"
    fd = os.open(directory / JOURNAL_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one writer at a time: whole lines, never interleaved
        with open(directory / JOURNAL_FILE, "rb") as fh:
            content = fh.read()
        if content and not content.endswith(b"\n"):
            os.write(fd, b"\n")  # a torn last line stays a line of its own (and counts as unreadable)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return server_running(directory)


def disable(state_dir: PathLike | None, reason: str, by: str = "") -> bool:
    """Kill switch: every prediction is refused (503) until :func:`enable`. Returns whether a
    running server uses this state directory (it records the action in its audit trail)."""
    if not reason.strip():
        raise InvalidParameterError("say why the model is disabled: --reason is required")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidParameterError(f"keep the reason under {MAX_REASON_CHARS} characters (it is shown to callers)")
    return _append(state_dir, "disable", " ".join(reason.split()), by)


def enable(state_dir: PathLike | None, by: str = "") -> bool:
    """Lift the kill switch; return whether a running server uses this state directory."""
    return _append(state_dir, "enable", "", by)


def switch_state(state_dir: PathLike) -> OperatorAction | None:
    """None while serving is on; else the entry that switched it off (an unreadable last entry
    counts as one: serving fails closed)."""
    entries = read_journal(state_dir)
    if not entries or entries[-1].action == "enable":
        return None
    return entries[-1]


def disabled_reason(state_dir: PathLike) -> str | None:
    """Why serving is switched off, or None while it is on."""
    state = switch_state(state_dir)
    return None if state is None else state.reason or "disabled"
