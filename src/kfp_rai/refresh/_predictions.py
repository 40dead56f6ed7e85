"""What a model predicts, summarized without a single row: a histogram of its scores and its share of
positive predictions. Taken at validation (stored with the registered version as
``prediction_reference.json``), by serving per time window and by the refresh on current data, so
prediction drift compares like with like; mergeable (counts add)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kfp_rai.core.verdict import Finding, GateStatus
from kfp_rai.errors import DataValidationError
from kfp_rai.stats.drift import Binned, psi
from kfp_rai.stats.intervals import wilson_interval

SCORE_BINS = 20  # of width 0.05: enough to see a shift, coarse enough for a window of a few hundred requests
KIND = "kfp_rai.prediction_summary"


@dataclass(frozen=True)
class PredictionSummary:
    """Scores counted in :data:`SCORE_BINS` equal bins of [0, 1], and how many reached the threshold."""

    counts: tuple[int, ...]
    positives: int
    threshold: float

    @property
    def rows(self) -> int:
        return int(sum(self.counts))

    @property
    def positive_rate(self) -> float:
        return self.positives / self.rows if self.rows else float("nan")

    @classmethod
    def of(cls, scores: np.ndarray | Sequence[float], threshold: float) -> PredictionSummary:
        values = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
        bins = np.minimum((values * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)
        counts = np.bincount(bins, minlength=SCORE_BINS)
        return cls(tuple(int(c) for c in counts), int(np.count_nonzero(values >= threshold)), float(threshold))

    def merge(self, other: PredictionSummary) -> PredictionSummary:
        if other.threshold != self.threshold:
            raise DataValidationError("cannot merge prediction summaries taken at different thresholds")
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return PredictionSummary(counts, self.positives + other.positives, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "bins": SCORE_BINS, "counts": list(self.counts), "positives": self.positives,
                "threshold": self.threshold, "rows": self.rows}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PredictionSummary:
        if not isinstance(d, Mapping) or d.get("kind") != KIND or d.get("bins") != SCORE_BINS:
            raise DataValidationError(f"not a prediction summary of {SCORE_BINS} score bins ({KIND})")
        counts = tuple(int(c) for c in d["counts"])
        if len(counts) != SCORE_BINS or min(counts) < 0 or not 0 <= int(d["positives"]) <= sum(counts):
            raise DataValidationError("a prediction summary's counts do not add up")
        return cls(counts, int(d["positives"]), float(d["threshold"]))


def bin_labels() -> tuple[str, ...]:
    return tuple(f"{i / SCORE_BINS:.2f}–{(i + 1) / SCORE_BINS:.2f}" for i in range(SCORE_BINS))


def prediction_drift(
    reference: PredictionSummary | None,
    current: PredictionSummary,
    *,
    psi_threshold: float,
    confidence: float,
    min_rows: int,
) -> list[Finding]:
    """Has what the model predicts moved? The score distribution (PSI over the score bins) and the
    share of positive predictions (its Wilson interval against the share at validation). A warning
    when it moved; not judged without a reference or with too few current predictions."""
    if reference is None:
        return [
            Finding(
                "refresh.prediction_drift",
                "predictions",
                GateStatus.NOT_JUDGED,
                "the champion has no prediction reference stored with it (registered before kfp-rai kept one): "
                "prediction drift cannot be judged",
            )
        ]
    if current.rows < min_rows:
        return [
            Finding(
                "refresh.prediction_drift",
                "predictions",
                GateStatus.NOT_JUDGED,
                f"only {current.rows} current predictions (< {min_rows}): too few to judge prediction drift",
                observed=current.rows,
                limit=min_rows,
            )
        ]
    value = psi(Binned(bin_labels(), np.asarray(reference.counts), np.asarray(current.counts)))
    shifted = value >= psi_threshold
    low, high = wilson_interval(current.positives, current.rows, confidence)
    expected = reference.positive_rate
    moved = not low <= expected <= high
    return [
        Finding(
            "refresh.score_psi",
            "predictions",
            GateStatus.WARNING if shifted else GateStatus.PASSED,
            f"scores: PSI {value:.3f} {'>=' if shifted else '<'} {psi_threshold} against validation",
            observed=value,
            limit=psi_threshold,
        ),
        Finding(
            "refresh.positive_rate",
            "predictions",
            GateStatus.WARNING if moved else GateStatus.PASSED,
            f"share of positive predictions {current.positive_rate:.3f} ({confidence:.1%} interval "
            f"{low:.3f}–{high:.3f}) {'excludes' if moved else 'includes'} {expected:.3f} at validation",
            observed=current.positive_rate,
            limit=expected,
            interval=(low, high),
        ),
    ]
