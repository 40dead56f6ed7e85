"""Refresh: does the model in production still see what it was judged on, and should a challenger
be trained?

:func:`resolve_champion` finds the version an alias names (verified); :func:`measure_data` reads the
current data once (inputs over the stored bins, the champion's scores, per-group counts where labels
exist); :func:`judge_refresh` judges input drift, prediction drift, performance and fairness and
decides (policy ``refresh``): passed (nothing triggered), warning (a trigger fired), not judged (too
little data: never "no drift"). :func:`compare_models` judges a challenger against the champion on
the same held-out rows. :func:`detect_drift` is the drift check on its own.
"""

from kfp_rai.production._candidate import PREDICTION_FILE
from kfp_rai.refresh._challenger import compare_with_champion, notify, training_window
from kfp_rai.refresh._champion import Champion, NoChampion, resolve_champion
from kfp_rai.refresh._compare import ComparisonReport, Scored, compare_models
from kfp_rai.refresh._drift import ColumnDrift, DriftReport, detect_drift, drift_between
from kfp_rai.refresh._monitor import Measured, measure_data
from kfp_rai.refresh._predictions import PredictionSummary, prediction_drift
from kfp_rai.refresh._reference import (
    ReferenceChoice,
    choose_reference,
    reference_summary,
    stored_reference,
    summarize_current,
)
from kfp_rai.refresh._refresh import (
    Decision,
    RefreshReport,
    decide,
    judge_refresh,
    monitor_champion,
    pending_challenger,
    report_metrics,
    scheduled_time,
)
from kfp_rai.stats.drift import population_stability_index

__all__ = [
    "PREDICTION_FILE",
    "Champion",
    "ColumnDrift",
    "ComparisonReport",
    "Decision",
    "Measured",
    "NoChampion",
    "PredictionSummary",
    "RefreshReport",
    "Scored",
    "DriftReport",
    "ReferenceChoice",
    "choose_reference",
    "compare_models",
    "compare_with_champion",
    "decide",
    "judge_refresh",
    "measure_data",
    "monitor_champion",
    "notify",
    "pending_challenger",
    "prediction_drift",
    "report_metrics",
    "resolve_champion",
    "scheduled_time",
    "detect_drift",
    "drift_between",
    "population_stability_index",
    "reference_summary",
    "stored_reference",
    "summarize_current",
    "training_window",
]
