"""The kill switch: a state file that makes the server refuse every prediction until lifted."""

from __future__ import annotations

import os
from pathlib import Path

from kfp_rai.core.clock import utc_now
from kfp_rai.core.files import read_json, write_json
from kfp_rai.errors import InvalidParameterError

DISABLED_FILE = "disabled.json"


def disable(state_dir: str | os.PathLike[str], reason: str, by: str = "") -> None:
    """Kill switch: every prediction is refused (503) until :func:`enable`."""
    if not reason.strip():
        raise InvalidParameterError("say why the model is disabled: --reason is required")
    write_json(
        Path(state_dir) / DISABLED_FILE, {"reason": reason, "time": utc_now(), "by": by or os.environ.get("USER", "")}
    )


def enable(state_dir: str | os.PathLike[str]) -> None:
    """Lift the kill switch."""
    (Path(state_dir) / DISABLED_FILE).unlink(missing_ok=True)


def disabled_reason(state_dir: str | os.PathLike[str]) -> str | None:
    """Why serving is switched off, or None while it is on."""
    path = Path(state_dir) / DISABLED_FILE
    return read_json(path).get("reason", "disabled") if path.exists() else None
