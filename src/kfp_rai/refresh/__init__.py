"""Refresh: has the data drifted away from what the model was trained on?

The refresh stage's verdict is the drift report's: passed (no drift), warning (drift: retrain),
not judged (too few current rows: fails closed). A retrained model goes through the same gates.
"""

from kfp_rai.refresh._drift import (
    ColumnDrift,
    DriftReport,
    ReferenceChoice,
    choose_reference,
    detect_drift,
    drift_between,
    reference_summary,
    stored_reference,
    summarize_current,
)
from kfp_rai.stats.drift import population_stability_index

__all__ = [
    "ColumnDrift",
    "DriftReport",
    "ReferenceChoice",
    "choose_reference",
    "detect_drift",
    "drift_between",
    "population_stability_index",
    "reference_summary",
    "stored_reference",
    "summarize_current",
]
