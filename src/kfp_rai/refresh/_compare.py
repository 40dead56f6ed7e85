"""Champion against challenger on the same held-out rows: every performance metric and every
fairness disparity of both, the difference with a paired bootstrap interval, and the policy's
non-regression rules (``refresh.max_*``).

Paired means one resample of the rows serves both models: the interval of a difference then
reflects how the two models disagree, not the sampling noise each would have alone. Each resample
is a vector of row multiplicities (a multinomial draw of n among n rows); every metric is a ratio of
weighted counts (confusion cells per group, score histograms per class), computed for all resamples
at once by one matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.charts import IntervalRow, Limit, interval_chart
from kfp_rai.core.groups import group_labels, intersection_labels, intersection_name
from kfp_rai.core.report import Figure, Report, Section, Table, findings_section
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.policy import Policy
from kfp_rai.stats.bootstrap import disparities, interval, rates

AUC_BINS = 1000
# metric -> (better when higher?, the policy's limit attribute)
RULES = {
    "accuracy": (True, "max_accuracy_drop"),
    "roc_auc": (True, "max_roc_auc_drop"),
    "demographic_parity_ratio": (True, "max_demographic_parity_ratio_drop"),
    "demographic_parity_difference": (False, "max_demographic_parity_difference_rise"),
    "equalized_odds_difference": (False, "max_equalized_odds_difference_rise"),
}


@dataclass(frozen=True)
class Scored:
    """One model's scores and decisions on the held-out rows."""

    name: str
    scores: np.ndarray
    threshold: float

    @property
    def predictions(self) -> np.ndarray:
        return (self.scores >= self.threshold).astype(np.int64)


@dataclass(frozen=True)
class ComparisonRow:
    metric: str
    subject: str  # "overall" or an attribute
    champion: float
    challenger: float
    difference: float  # challenger - champion
    interval: tuple[float, float] | None
    limit: float
    status: GateStatus


@dataclass(frozen=True)
class ComparisonReport(Report):
    """Champion vs challenger on the same rows, with the non-regression verdict."""

    kind = "comparison_report"
    title = "Challenger against champion on the same held-out rows"

    verdict: Verdict
    champion: dict[str, Any]
    challenger: dict[str, Any]
    rows: int
    n_boot: int
    confidence: float
    comparisons: tuple[ComparisonRow, ...]
    policy: dict[str, Any]

    def sections(self) -> list[Section]:
        table = Table(
            ("metric", "subject", "champion", "challenger", "difference", "paired interval", "limit", "status"),
            tuple(
                (r.metric, r.subject, r.champion, r.challenger, r.difference, r.interval, r.limit, r.status)
                for r in self.comparisons
            ),
        )
        chart = interval_chart(
            [
                IntervalRow(
                    f"{r.metric} ({r.subject})",
                    r.difference,
                    r.interval[0] if r.interval else None,
                    r.interval[1] if r.interval else None,
                    None,
                    r.status,
                )
                for r in self.comparisons
            ],
            title="Challenger minus champion, with paired bootstrap intervals",
            xlabel="difference (challenger - champion)",
            ylabel="metric (subject)",
            alt="difference of each metric between challenger and champion with its interval",
            limits=(Limit(0.0, "no change"),),
        )
        judged = (
            "the least favourable end of the interval"
            if self.policy.get("judge_on") == "interval"
            else "the difference"
        )
        return [
            Section(
                "What was compared",
                (
                    f"The {self.champion['role']} and the challenger ({self.challenger['name']}), each scoring the "
                    f"same {self.rows} held-out rows of the new data; intervals: {self.confidence:.0%} percentiles of "
                    f"{self.n_boot} paired resamples (one resample of the rows for both models). Limits: how much "
                    f"each metric may move the wrong way (refresh.max_*), judged on {judged}.",
                    table,
                    Figure(chart, "Each metric's change; a dot left of zero means lower for the challenger."),
                ),
            ),
            findings_section(self.verdict),
        ]


def _groups(frame: pd.DataFrame, sensitive: Sequence[str], intersections: bool) -> dict[str, pd.Series]:
    out = {a: group_labels(frame[a]) for a in sensitive}
    if intersections and len(sensitive) > 1:
        out[intersection_name(list(sensitive))] = intersection_labels(frame, list(sensitive))
    return out


def _weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Row multiplicities of ``n_boot`` resamples (n rows drawn with replacement), shape (n_boot, n)."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(n_boot)]).astype(float)


def _cells(weights: np.ndarray, codes: np.ndarray, n_groups: int, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Weighted confusion cells per group, shape (resamples, groups, 4)."""
    index = codes * 4 + y * 2 + pred
    onehot = np.zeros((len(index), n_groups * 4))
    onehot[np.arange(len(index)), index] = 1.0
    return (weights @ onehot).reshape(len(weights), n_groups, 4)


def _auc(weights: np.ndarray, scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ROC AUC per resample from weighted score histograms of each class."""
    bins = np.minimum((np.clip(scores, 0, 1) * AUC_BINS).astype(np.int64), AUC_BINS - 1)
    onehot = np.zeros((len(bins), 2 * AUC_BINS))
    onehot[np.arange(len(bins)), y * AUC_BINS + bins] = 1.0
    hist = weights @ onehot
    neg, pos = hist[:, :AUC_BINS], hist[:, AUC_BINS:]
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = ((pos * below).sum(axis=1) + 0.5 * (pos * neg).sum(axis=1)) / (neg.sum(1) * pos.sum(1))
    return out


def _metrics(
    weights: np.ndarray,
    model: Scored,
    y: np.ndarray,
    groups: dict[str, tuple[np.ndarray, int, list[int], list[int]]],
) -> dict[tuple[str, str], np.ndarray]:
    pred = model.predictions
    out: dict[tuple[str, str], np.ndarray] = {}
    overall = _cells(weights, np.zeros(len(y), dtype=np.int64), 1, y, pred)
    out[("accuracy", "overall")] = rates(overall)["accuracy"][:, 0]
    out[("roc_auc", "overall")] = _auc(weights, model.scores, y)
    for attribute, (codes, n_groups, judged, odds) in groups.items():
        cells = _cells(weights, codes, n_groups, y, pred)
        for name, values in disparities(cells[:, judged]).items():
            out[(name, attribute)] = np.asarray(values, dtype=float)
        # equalized odds between the groups with enough positives and negatives, as at validation
        eo = disparities(cells[:, odds])["equalized_odds_difference"] if len(odds) >= 2 else np.nan
        out[("equalized_odds_difference", attribute)] = np.broadcast_to(np.asarray(eo, dtype=float), len(weights))
    return out


def compare_models(
    champion: Scored,
    challenger: Scored,
    test: pd.DataFrame,
    *,
    target: str,
    positive_label: str,
    sensitive: Sequence[str],
    policy: Policy,
    seed: int = 0,
    champion_info: dict[str, Any] | None = None,
    challenger_info: dict[str, Any] | None = None,
) -> ComparisonReport:
    """Compare two models' scores on the same rows (``test``) under the policy's non-regression rules.

    Disparities are taken between the groups with at least ``validation.min_group_size`` rows (as
    at validation), equalized odds between those that also hold ``validation.min_positives``
    positives and ``min_negatives`` negatives; with fewer than two such groups a disparity is
    undefined and not judged. Row 0
    of the resamples is the data itself (weights of one), so the point values are exact.
    """
    rules, level = policy.refresh, policy.validation.confidence_level
    n_boot = max(policy.validation.bootstrap_samples, 0)
    y = (test[target].astype(str) == str(positive_label)).to_numpy().astype(np.int64)
    weights = np.vstack([np.ones((1, len(y))), _weights(len(y), n_boot, seed)]) if n_boot else np.ones((1, len(y)))
    groups = {}
    for attribute, labels in _groups(test, sensitive, policy.validation.gate_intersections).items():
        names, codes = np.unique(labels.astype(str).to_numpy(), return_inverse=True)
        sizes = np.bincount(codes, minlength=len(names))
        positives = np.bincount(codes, weights=y, minlength=len(names))
        judged = [i for i, s in enumerate(sizes) if s >= policy.validation.min_group_size]
        v = policy.validation
        groups[attribute] = (
            codes,
            len(names),
            judged,
            [i for i in judged if positives[i] >= v.min_positives and sizes[i] - positives[i] >= v.min_negatives],
        )
    ours = _metrics(weights, champion, y, groups)
    theirs = _metrics(weights, challenger, y, groups)
    rows = []
    for (metric, subject), before in ours.items():
        after = theirs[(metric, subject)]
        higher_is_better, limit_name = RULES[metric]
        limit = float(getattr(rules, limit_name))
        diff = after - before
        point = float(diff[0])
        spread = interval(diff[1:], level) if n_boot else None
        if not np.isfinite(point):
            status = GateStatus.NOT_JUDGED
        else:
            worst = point
            if rules.judge_on == "interval" and spread is not None:
                worst = spread[0] if higher_is_better else spread[1]
            regression = -worst if higher_is_better else worst
            status = GateStatus.FAILED if regression > limit + 1e-9 else GateStatus.PASSED
        rows.append(ComparisonRow(metric, subject, float(before[0]), float(after[0]), point, spread, limit, status))
    findings = [_finding(r) for r in rows]
    verdict = Verdict.judge(
        findings, summary="the challenger loses nothing beyond the policy's limits", enforce=rules.enforce
    )
    return ComparisonReport(
        verdict=verdict,
        champion=champion_info or {"name": champion.name, "role": f"champion {champion.name}"},
        challenger=challenger_info or {"name": challenger.name},
        rows=len(y),
        n_boot=n_boot,
        confidence=level,
        comparisons=tuple(rows),
        policy=rules.to_dict(),
    )


def _finding(r: ComparisonRow) -> Finding:
    higher_is_better, _ = RULES[r.metric]
    direction = "drop" if higher_is_better else "rise"
    if r.status is GateStatus.NOT_JUDGED:
        message = f"{r.metric} ({r.subject}): undefined for one of the models (fewer than two groups large enough)"
    else:
        moved = -r.difference if higher_is_better else r.difference
        message = (
            f"{r.metric} ({r.subject}): champion {r.champion:.3f}, challenger {r.challenger:.3f}; "
            f"{direction} {max(moved, 0.0):.3f} {'>' if r.status is GateStatus.FAILED else '<='} {r.limit}"
        )
    return Finding(
        f"refresh.non_regression.{r.metric}",
        r.subject,
        r.status,
        message,
        observed=r.difference,
        limit=r.limit,
        interval=r.interval,
    )
