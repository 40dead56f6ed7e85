"""Human-computed metrics: a reviewer's own figures, compared with ours before a model may go on.

The lifecycle this project follows has people compute metrics themselves in validation. A
reviewer writes a small YAML file — who, when, on which data (its sha256), and the metrics they
computed — and the validation gate compares each with ours: a difference beyond the policy's
``validation.reviewer_tolerance`` fails, as does a file computed on other data. A disagreement is
never recorded as a mere warning (it means one of the two computations is wrong), and the model
card names the reviewer.

Example::

    reviewer: Jane Doe
    role: independent validator, model risk
    date: 2026-11-20
    data_sha256: f3876cd2ad00766d0c5ef482ffcdef5eb90a9dbc7e91d53cd7c7fafb890527c2
    metrics:
      - {metric: accuracy, value: 0.8707}
      - {metric: selection_rate, attribute: sex, group: Female, value: 0.0725}
      - {metric: demographic_parity_ratio, attribute: sex, value: 0.321}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from kfp_rai.core.files import HumanWrittenYaml
from kfp_rai.core.numbers import is_finite_number
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.errors import InvalidParameterError
from kfp_rai.validation._report import ValidationReport

OVERALL = ("accuracy", "roc_auc", "selection_rate", "true_positive_rate", "false_positive_rate")
PER_GROUP = ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate", "precision", "roc_auc")
BETWEEN_GROUPS = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference")
_RULE = "validation.reviewer_tolerance"


@dataclass(frozen=True)
class ReviewerMetric:
    """One figure a person computed: overall (no attribute), between the groups of an attribute
    (a disparity), or for one group of an attribute."""

    metric: str
    value: float
    attribute: str | None = None
    group: str | None = None

    @property
    def label(self) -> str:
        where = f"{self.attribute}={self.group}" if self.group else self.attribute or "overall"
        return f"{self.metric} ({where})"


@dataclass(frozen=True)
class ReviewerFile(HumanWrittenYaml):
    """Who checked, when, on which test data (sha256), and the figures they computed."""

    what: ClassVar[str] = "reviewer file"
    reviewer: str
    role: str
    date: str
    data_sha256: str
    metrics: tuple[ReviewerMetric, ...]
    notes: str = ""

    @classmethod
    def from_dict(cls, data: Any) -> ReviewerFile:
        if not isinstance(data, dict):
            raise InvalidParameterError("a reviewer file must be a mapping: reviewer, role, date, data_sha256, metrics")
        unknown = sorted(str(k) for k in set(data) - {"reviewer", "role", "date", "data_sha256", "metrics", "notes"})
        if unknown:
            raise InvalidParameterError(f"reviewer file: unknown key {unknown[0]!r}")
        for key in ("reviewer", "role", "data_sha256"):
            if not isinstance(data.get(key), str) or not data[key].strip():
                raise InvalidParameterError(f"reviewer file: {key!r} must be given as text")
        date = data.get("date")
        try:
            day = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date))
        except ValueError:
            raise InvalidParameterError(f"reviewer file: 'date' must be YYYY-MM-DD, got {date!r}") from None
        sha = data["data_sha256"].strip().lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise InvalidParameterError(
                "reviewer file: 'data_sha256' must be the 64 hex digits of the test data's sha256"
            )
        items = data.get("metrics")
        if not isinstance(items, list) or not items:
            raise InvalidParameterError("reviewer file: 'metrics' must list at least one metric the reviewer computed")
        return cls(
            reviewer=data["reviewer"].strip(),
            role=data["role"].strip(),
            date=day.isoformat(),
            data_sha256=sha,
            metrics=tuple(_metric(i, item) for i, item in enumerate(items, 1)),
            notes=str(data.get("notes") or ""),
        )


def _metric(i: int, item: Any) -> ReviewerMetric:
    where = f"reviewer file: metric {i}"
    if not isinstance(item, dict) or set(item) - {"metric", "value", "attribute", "group"}:
        raise InvalidParameterError(f"{where} must be a mapping of metric, value and optionally attribute and group")
    name, value = item.get("metric"), item.get("value")
    attribute, group = item.get("attribute"), item.get("group")
    if isinstance(value, bool) or not is_finite_number(value):
        raise InvalidParameterError(f"{where}: 'value' must be a finite number, got {value!r}")
    allowed = PER_GROUP if group is not None else BETWEEN_GROUPS if attribute is not None else OVERALL
    if group is not None and attribute is None:
        raise InvalidParameterError(f"{where}: a 'group' needs its 'attribute'")
    if name not in allowed:
        kind = "per group" if group is not None else "between groups" if attribute is not None else "overall"
        raise InvalidParameterError(f"{where}: {name!r} is not a metric computed {kind}; one of {', '.join(allowed)}")
    return ReviewerMetric(str(name), float(value or 0.0), _text(attribute), _text(group))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _ours(report: ValidationReport, m: ReviewerMetric) -> float | None:
    if m.attribute is None:
        return report.overall.get(m.metric)
    fairness = next((f for f in report.fairness if f.attribute == m.attribute), None)
    if fairness is None:
        return None
    if m.group is None:
        return float(getattr(fairness, m.metric))
    group = next((g for g in fairness.groups if g.group == m.group), None)
    return None if group is None else float(getattr(group, m.metric))


@dataclass(frozen=True)
class Comparison:
    metric: str
    theirs: float
    ours: float | None
    difference: float | None
    status: GateStatus


def compare_with_reviewer(
    report: ValidationReport, reviewer: ReviewerFile, *, data_sha256: str, tolerance: float
) -> ValidationReport:
    """``report`` with the reviewer's check added: their findings join the verdict (always
    enforced), and ``report.reviewer`` records who checked what, and how it compared."""
    findings = []
    same_data = reviewer.data_sha256 == data_sha256.lower()
    findings.append(
        Finding(
            "validation.reviewer_data",
            "reviewer",
            GateStatus.PASSED if same_data else GateStatus.FAILED,
            f"{reviewer.reviewer} computed on the test data (sha256 {data_sha256[:12]})"
            if same_data
            else f"{reviewer.reviewer} computed on data with sha256 {reviewer.data_sha256[:12]}, but the test data "
            f"is {data_sha256[:12] or 'unknown'}: their figures cannot confirm ours",
        )
    )
    comparisons = []
    for m in reviewer.metrics:
        ours = _ours(report, m)
        if ours is None or math.isnan(ours):
            status, difference = GateStatus.NOT_JUDGED, None
            message = f"{m.label}: the reviewer has {m.value:.4f}, we have no such figure, so it cannot be compared"
        else:
            difference = abs(m.value - ours)
            status = GateStatus.PASSED if difference <= tolerance else GateStatus.FAILED
            message = f"{m.label}: reviewer {m.value:.4f}, ours {ours:.4f}" + (
                "" if status is GateStatus.PASSED else f": they disagree by {difference:.4f} (> {tolerance})"
            )
        comparisons.append(Comparison(m.label, m.value, ours, difference, status))
        findings.append(Finding(_RULE, m.label, status, message, observed=difference, limit=tolerance))
    checked = Verdict.judge(findings, summary=f"{reviewer.reviewer}'s {len(reviewer.metrics)} figures agree with ours")
    verdict = Verdict.combine([report.verdict, checked], summary=f"{report.verdict.reason}; {checked.reason}")
    record = {
        **{k: v for k, v in dataclasses.asdict(reviewer).items() if k != "metrics"},
        "tolerance": tolerance,
        "status": checked.status.value,
        "comparisons": [dataclasses.asdict(c) for c in comparisons],
    }
    return dataclasses.replace(report, verdict=verdict, reviewer=record)


def reviewer_summary(record: Mapping[str, Any] | None) -> str:
    """One line for people about the human check, or that there was none."""
    if not record:
        return "No reviewer file: no person recomputed the metrics."
    n = len(record.get("comparisons", []))
    return (
        f"{record['reviewer']} ({record['role']}) computed {n} figure{'s' if n != 1 else ''} on {record['date']} "
        f"on the test data sha256 {record['data_sha256'][:12]}; compared with ours within {record['tolerance']}: "
        f"{record['status'].replace('_', ' ')}."
    )
