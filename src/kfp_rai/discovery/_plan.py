"""The data collection plan: a human-written YAML, checked by JSON Schema and then against the data.

People design the plan in discovery (why, from where, by whom, licence, period, which populations
the data must hold, retention); the data is then checked against it and every finding is a
:class:`Finding` like any gate's: an expected column or group that is missing fails, a group the
plan does not expect fails, rows outside the collection period fail, and no plan at all is not
judged (fails closed: a data set nobody planned cannot be reviewed).
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar

import pandas as pd

from kfp_rai.core.files import HumanWrittenYaml
from kfp_rai.core.groups import group_labels
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.errors import InvalidParameterError

_RULE = "collection_plan"
NO_PLAN = (
    "no data collection plan was given: write one (see docs/collection-plan.md) and pass it with "
    "--collection-plan; until then the data's provenance cannot be reviewed"
)


def _schema() -> dict[str, Any]:
    text = resources.files("kfp_rai.schemas").joinpath("collection_plan.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@dataclass(frozen=True)
class CollectionPlan(HumanWrittenYaml):
    """A validated data collection plan (see ``schemas/collection_plan.schema.json``)."""

    what: ClassVar[str] = "data collection plan"

    data: dict[str, Any]

    @property
    def start(self) -> dt.date:
        return dt.date.fromisoformat(self.data["collection"]["start"])

    @property
    def end(self) -> dt.date:
        return dt.date.fromisoformat(self.data["collection"]["end"])

    @classmethod
    def from_dict(cls, data: Any) -> CollectionPlan:
        """Validate ``data`` against the JSON Schema; the first problem is one clear error."""
        import jsonschema

        data = _dates_as_text(data)
        validator = jsonschema.Draft202012Validator(_schema(), format_checker=jsonschema.FormatChecker())
        errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "the top level"
            raise InvalidParameterError(
                f"data collection plan, at {where}: {first.message} "
                "(schema: kfp_rai/schemas/collection_plan.schema.json)"
            )
        plan = cls(data)
        try:
            start, end = plan.start, plan.end
        except ValueError as exc:
            raise InvalidParameterError(f"data collection plan: collection dates must be YYYY-MM-DD ({exc})") from None
        if end < start:
            raise InvalidParameterError(
                f"data collection plan: collection.end {end} is before collection.start {start}"
            )
        unknown = sorted(str(k) for k in set(data["expected_populations"]) - set(data["sensitive_attributes"]))
        if unknown:
            raise InvalidParameterError(
                f"data collection plan: expected_populations names {unknown}, which are not among its "
                "sensitive_attributes"
            )
        return plan


def _dates_as_text(data: Any) -> Any:
    """YAML reads an unquoted 1994-01-01 as a date: the plan's dates are its text."""
    if isinstance(data, dict) and isinstance(data.get("collection"), dict):
        collection = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in data["collection"].items()}
        return {**data, "collection": collection}
    return data


def _finding(subject: str, ok: bool, message: str, status: GateStatus = GateStatus.FAILED, **kw: Any) -> Finding:
    return Finding(_RULE, subject, GateStatus.PASSED if ok else status, message, **kw)


def _period_findings(df: pd.DataFrame, plan: CollectionPlan) -> list[Finding]:
    """Every row's date lies in the period. A date column holding numbers, values that are not
    dates, or rows without a date cannot be checked: not judged, with the count."""
    column = plan.data["collection"].get("date_column")
    if not column:
        return []
    if column not in df.columns:
        return [_finding(column, False, f"date column {column!r} named by the plan is not in the data")]
    values = df[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return [
            _finding(
                column,
                False,
                f"{column!r} holds numbers, not dates: the collection period cannot be checked (write dates as "
                "YYYY-MM-DD)",
                GateStatus.NOT_JUDGED,
            )
        ]
    days = pd.Series([None] * len(values), index=values.index, dtype=object)
    with warnings.catch_warnings():  # pandas warns about mixed zones, which are read value by value below
        warnings.simplefilter("ignore")
        try:  # one parse for the usual column (one time zone, or none); each day in its own zone
            parsed = pd.to_datetime(values, errors="coerce")
            days = parsed.dt.date.where(parsed.notna(), None).astype(object)
        except (TypeError, ValueError, AttributeError):
            pass
    retry = days.isna() & values.notna()  # mixed zones, or naive beside aware: value by value
    if retry.any():
        days[retry] = [_day(v) for v in values[retry].tolist()]
    undated = int(days.isna().sum())
    if undated:
        return [
            _finding(
                column,
                False,
                f"{undated} of {len(days)} rows have no readable date in {column!r}: the collection period cannot "
                "be checked for them",
                GateStatus.NOT_JUDGED,
            )
        ]
    outside = int(((days < plan.start) | (days > plan.end)).sum())
    span = f"{plan.start}..{plan.end}"
    if outside:
        return [_finding(column, False, f"{outside} rows fall outside the plan's collection period {span}")]
    return [
        _finding(column, True, f"every row's date lies in the collection period {span} ({days.min()}..{days.max()})")
    ]


def _day(value: Any) -> dt.date | None:
    """The calendar day a value names, in its own time zone; None when it names none."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        stamp = pd.Timestamp(str(value))
    except (ValueError, TypeError, OverflowError):
        return None
    return None if pd.isna(stamp) else stamp.date()


def check_plan(
    df: pd.DataFrame, plan: CollectionPlan | None, *, sensitive_features: Sequence[str], enforce: bool = True
) -> Verdict:
    """Check ``df`` against the plan: columns, sensitive attributes, expected groups, period.

    Without a plan the verdict is not judged (fails closed, and no policy waives it).
    """
    if plan is None:
        return Verdict.judge(
            [Finding(_RULE, "data collection plan", GateStatus.NOT_JUDGED, NO_PLAN)], summary="", enforce=enforce
        )
    data = plan.data
    findings = []
    missing = [c for c in data["expected_columns"] if c not in df.columns]
    findings.append(
        _finding(
            "expected columns",
            not missing,
            f"the data lacks columns the plan expects: {missing}"
            if missing
            else f"all {len(data['expected_columns'])} expected columns are present",
        )
    )
    planned, judged = set(data["sensitive_attributes"]), set(sensitive_features)
    for attr in sorted(planned | judged):
        if attr not in judged:
            findings.append(_finding(attr, False, f"{attr}: the plan names it sensitive, but it is not judged"))
        elif attr not in planned:
            findings.append(_finding(attr, False, f"{attr}: judged as sensitive, but the plan does not name it"))
    for attr, spec in data["expected_populations"].items():
        if attr not in df.columns:
            continue  # reported with the expected columns or attributes
        present = set(group_labels(df[attr]).unique())
        expected = list(spec["groups"])
        absent = [g for g in expected if g not in present]
        unexpected = sorted(present - set(expected))
        if absent:
            findings.append(
                _finding(attr, False, f"{attr}: groups the plan expects are absent from the data: {absent}")
            )
        if unexpected:
            findings.append(
                _finding(
                    attr,
                    False,
                    f"{attr}: the data holds groups the plan does not expect: {unexpected} (add them to the plan "
                    "or correct the data)",
                )
            )
        if not absent and not unexpected:
            findings.append(_finding(attr, True, f"{attr}: exactly the {len(expected)} groups the plan expects"))
    findings += _period_findings(df, plan)
    return Verdict.judge(findings, summary=f"the data matches its collection plan ({data['title']})", enforce=enforce)
