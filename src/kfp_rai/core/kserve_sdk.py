"""Importing the ``kserve`` package safely: ``kserve.model_server`` parses ``sys.argv`` when it is
imported (its own server's options), and would refuse kfp-rai's command line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def without_argv() -> Iterator[None]:
    """Hide the process's arguments from what is imported inside the block."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def kserve() -> ModuleType:
    """The ``kserve`` package (its model server, protocol types and the SDK's typed objects)."""
    with without_argv():
        import kserve as module
    return module  # type: ignore[no-any-return]
