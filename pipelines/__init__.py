"""kfp_rai.pipelines: pipeline definitions, the local runner and run record, ``compiled/``.

``lifecycle_pipeline`` runs discovery → training → validation → production → refresh with gates;
``refresh_pipeline`` judges the production model against current data and trains a challenger;
``partitioned-drift`` and ``partitioned-fairness`` fan out over a partitioned data set.
Pipelines are imported on first use (``PIPELINES``, ``lifecycle_pipeline``): the run record and
index need no kfp.
"""

from typing import Any

__all__ = ["PIPELINES", "lifecycle_pipeline"]


def __getattr__(name: str) -> Any:
    if name in ("lifecycle_pipeline", "PIPELINES"):
        from kfp_rai.pipelines.lifecycle import lifecycle_pipeline
        from kfp_rai.pipelines.partitioned import partitioned_drift, partitioned_fairness
        from kfp_rai.pipelines.refresh import refresh_pipeline

        if name == "lifecycle_pipeline":
            return lifecycle_pipeline
        return {
            "lifecycle": lifecycle_pipeline,
            "refresh": refresh_pipeline,
            "partitioned-drift": partitioned_drift,
            "partitioned-fairness": partitioned_fairness,
        }
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
