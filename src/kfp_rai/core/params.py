"""Numeric parameters every entry point (CLI, kfp SDK submission, a pipeline typed into the
Kubeflow UI) checks the same way before anything runs."""

from __future__ import annotations

from typing import Any

from kfp_rai.errors import InvalidParameterError

MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's seeds are unsigned 32-bit


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as a whole number in [0, 2**32 - 1], or one clear error."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidParameterError(f"{name} must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return seed
