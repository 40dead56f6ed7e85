"""The per-user state directory (kill switch, audit logs, the registry heads this machine has
seen): ``$KFP_RAI_STATE_DIR``, else ``$XDG_STATE_HOME/kfp-rai``, else ``~/.local/state/kfp-rai``,
mode 0700, refused when another user could write it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kfp_rai.core.files import PathLike
from kfp_rai.errors import InvalidParameterError


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
