"""Refresh: has the data drifted away from what the model was trained on?"""

from kfp_rai.refresh._drift import (
    ColumnDrift,
    DriftReport,
    detect_drift,
    population_stability_index,
)

__all__ = ["ColumnDrift", "DriftReport", "detect_drift", "population_stability_index"]
