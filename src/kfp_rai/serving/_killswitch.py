"""The kill switch and the state directory it lives in.

The state directory defaults to a per-user place (``$KFP_RAI_STATE_DIR``, else
``$XDG_STATE_HOME/kfp-rai``, else ``~/.local/state/kfp-rai``) created with mode 0700; one that is
group/world-writable or owned by another user is refused, since whoever can write it can switch
serving off or on. ``disabled.json`` there makes the server refuse every prediction (503, with the
reason) from the next request on; an unreadable one counts as disabled (fail closed). A running
server holds a shared lock on ``server.lock``, so the switch can say whether anyone is listening.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from kfp_rai.core.clock import utc_now
from kfp_rai.core.files import PathLike, write_json
from kfp_rai.errors import InvalidParameterError

DISABLED_FILE = "disabled.json"
SERVER_LOCK = "server.lock"


def default_state_dir() -> Path:
    if explicit := os.environ.get("KFP_RAI_STATE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kfp-rai"


def safe_state_dir(path: PathLike | None = None) -> Path:
    """The state directory, created with mode 0700 if missing; refused if others could write it."""
    directory = Path(path) if path else default_state_dir()
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        os.chmod(directory, 0o700)
    if not directory.is_dir():
        raise InvalidParameterError(f"state directory {directory} is not a directory")
    info = directory.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise InvalidParameterError(f"state directory {directory} belongs to another user: use one of your own")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InvalidParameterError(
            f"state directory {directory} is writable by others (mode {info.st_mode & 0o777:o}): chmod 700 it"
        )
    return directory


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


def disable(state_dir: PathLike | None, reason: str, by: str = "") -> bool:
    """Kill switch: every prediction is refused (503) until :func:`enable`. Returns whether a
    running server uses this state directory (it records the action in its audit trail)."""
    if not reason.strip():
        raise InvalidParameterError("say why the model is disabled: --reason is required")
    directory = safe_state_dir(state_dir)
    write_json(directory / DISABLED_FILE, {"reason": reason, "time": utc_now(), "by": by or os.environ.get("USER", "")})
    return server_running(directory)


def enable(state_dir: PathLike | None) -> bool:
    """Lift the kill switch; return whether a running server uses this state directory."""
    directory = safe_state_dir(state_dir)
    (directory / DISABLED_FILE).unlink(missing_ok=True)
    return server_running(directory)


def switch_state(state_dir: PathLike) -> dict[str, str] | None:
    """The kill switch's state: None while serving is on; else reason, time and who. A state file
    that cannot be read counts as disabled: serving fails closed."""
    path = Path(state_dir) / DISABLED_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        return {k: str(data.get(k, "")) for k in ("reason", "time", "by")}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {
            "reason": f"the kill switch's state file is unreadable ({exc}): serving stays off",
            "time": "",
            "by": "",
        }


def disabled_reason(state_dir: PathLike) -> str | None:
    """Why serving is switched off, or None while it is on."""
    state = switch_state(state_dir)
    return None if state is None else state["reason"] or "disabled"
