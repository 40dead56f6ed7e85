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
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd

from kfp_rai.core.files import load_yaml, read_text_file
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
class CollectionPlan:
    """A validated data collection plan (see ``schemas/collection_plan.schema.json``)."""

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

        validator = jsonschema.Draft202012Validator(_schema(), format_checker=jsonschema.FormatChecker())
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
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
        unknown = sorted(set(data["expected_populations"]) - set(data["sensitive_attributes"]))
        if unknown:
            raise InvalidParameterError(
                f"data collection plan: expected_populations names {unknown}, which are not among its "
                "sensitive_attributes"
            )
        return plan

    @classmethod
    def from_yaml(cls, text: str) -> CollectionPlan:
        return cls.from_dict(load_yaml(text, "data collection plan"))

    @classmethod
    def load(cls, path: str) -> CollectionPlan:
        return read_text_file(path, "data collection plan", cls.from_yaml)


def _finding(subject: str, ok: bool, message: str, status: GateStatus = GateStatus.FAILED, **kw: Any) -> Finding:
    return Finding(_RULE, subject, GateStatus.PASSED if ok else status, message, **kw)


def _period_findings(df: pd.DataFrame, plan: CollectionPlan) -> list[Finding]:
    column = plan.data["collection"].get("date_column")
    if not column:
        return []
    if column not in df.columns:
        return [_finding(column, False, f"date column {column!r} named by the plan is not in the data")]
    dates = pd.to_datetime(df[column], errors="coerce", utc=True)
    unreadable = int(dates.isna().sum() - df[column].isna().sum())
    if unreadable:
        return [
            _finding(
                column,
                False,
                f"{unreadable} values of {column!r} are not dates: the collection period cannot be checked",
                GateStatus.NOT_JUDGED,
            )
        ]
    days = dates.dropna().dt.date
    outside = int(((days < plan.start) | (days > plan.end)).sum())
    span = f"{plan.start}..{plan.end}"
    if outside:
        return [_finding(column, False, f"{outside} rows fall outside the plan's collection period {span}")]
    covered = f"{days.min()}..{days.max()}" if len(days) else "no dated rows"
    return [_finding(column, True, f"every dated row lies in the collection period {span} (data: {covered})")]


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
