"""kfp_rai.pipelines: pipeline definitions, the local runner and run record, ``compiled/``.

``lifecycle_pipeline`` runs discovery → training → validation → production → refresh with gates.
Pipelines are imported on first use (``PIPELINES``, ``lifecycle_pipeline``): the run record and
index need no kfp.
"""

from typing import Any

__all__ = ["PIPELINES", "lifecycle_pipeline"]


def __getattr__(name: str) -> Any:
    if name in ("lifecycle_pipeline", "PIPELINES"):
        from kfp_rai.pipelines.lifecycle import lifecycle_pipeline

        return lifecycle_pipeline if name == "lifecycle_pipeline" else {"lifecycle": lifecycle_pipeline}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
