"""kfp_rai.pipelines: the compiled pipelines and the local runner.

``lifecycle_pipeline`` runs discovery → training → validation → production → refresh with gates.
"""

from kfp_rai.pipelines.lifecycle import lifecycle_pipeline

PIPELINES = {"lifecycle": lifecycle_pipeline}

__all__ = ["PIPELINES", "lifecycle_pipeline"]
