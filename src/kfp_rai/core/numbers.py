"""Numbers read from people and requests: JSON and YAML allow integers of any length."""

from __future__ import annotations

import math
from typing import Any


def is_finite_number(value: Any) -> bool:
    """True for an int or float (not a bool) that is finite as a float: an int past float range
    (``10**400``) is not, rather than an OverflowError later."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
