"""The one clock: timezone-aware UTC timestamps in ISO 8601, as every record and report writes them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

Precision = Literal["seconds", "milliseconds"]


def utc_now(timespec: Precision = "seconds") -> str:
    """Now, in UTC, as ISO 8601 (``2026-11-24T09:30:00+00:00``)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec=timespec)
