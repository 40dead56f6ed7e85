"""The datasheet (after Gebru et al., "Datasheets for Datasets", 2021) and per-group data quality.

Built from the human-written collection plan and every discovery finding: representativeness
against the reference, the plan checked against the data, rows, label base rate and missingness
per group and intersection, and the features that stand in for a sensitive attribute. Its verdict
is the discovery stage's: representativeness and the collection plan together.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from kfp_rai.core.groups import intersection_labels, intersection_name
from kfp_rai.core.report import Bullets, Figure, Report, Section, Table, findings_section
from kfp_rai.core.verdict import GateStatus, Verdict
from kfp_rai.discovery._plan import CollectionPlan
from kfp_rai.discovery._proxies import Association
from kfp_rai.stats.intervals import wilson_interval

_MISSING_RATIO = 2.0  # a group's missing share this many times the overall one ...
_MISSING_GAP = 0.05  # ... and at least this much higher is called out


@dataclass(frozen=True)
class GroupQuality:
    """One group's (or intersection's) rows, label base rate with its Wilson interval, and the
    share of missing values in each column that has any."""

    attribute: str
    group: str
    rows: int
    base_rate: float
    base_rate_low: float
    base_rate_high: float
    missing: dict[str, float]


def group_quality(
    df: pd.DataFrame,
    *,
    target: str,
    positive_label: str,
    sensitive_features: Sequence[str],
    confidence_level: float = 0.95,
    intersections: bool = True,
) -> tuple[GroupQuality, ...]:
    """Rows, label base rate and missingness per group of each attribute and intersection."""
    positive = (df[target].astype(str) == str(positive_label)).to_numpy()
    with_missing = [c for c in df.columns if df[c].isna().any()]
    missing = df[with_missing].isna()
    combos: list[tuple[str, ...]] = [(a,) for a in sensitive_features]
    if intersections:
        combos += [
            c for n in range(2, len(sensitive_features) + 1) for c in itertools.combinations(sensitive_features, n)
        ]
    out = []
    for combo in combos:
        labels = intersection_labels(df, combo).to_numpy()
        for group in sorted(set(labels)):
            rows = labels == group
            n, k = int(rows.sum()), int(positive[rows].sum())
            low, high = wilson_interval(k, n, confidence_level)
            out.append(
                GroupQuality(
                    attribute=intersection_name(combo),
                    group=str(group),
                    rows=n,
                    base_rate=k / n,
                    base_rate_low=low,
                    base_rate_high=high,
                    missing={c: float(missing[c].to_numpy()[rows].mean()) for c in with_missing},
                )
            )
    return tuple(out)


def quality_notes(
    quality: Sequence[GroupQuality], overall_rate: float, overall_missing: Mapping[str, float]
) -> list[str]:
    """What a reviewer should see before training: groups whose base rate differs from the whole
    data's beyond their interval, and columns missing mostly for one group."""
    notes = []
    for q in quality:
        if not q.base_rate_low <= overall_rate <= q.base_rate_high:
            notes.append(
                f"{q.attribute}={q.group}: label base rate {q.base_rate:.1%} ({q.base_rate_low:.1%}-"
                f"{q.base_rate_high:.1%}) vs {overall_rate:.1%} overall"
            )
    for q in quality:
        for column, share in q.missing.items():
            overall = overall_missing.get(column, 0.0)
            if share >= _MISSING_RATIO * overall and share - overall >= _MISSING_GAP:
                notes.append(f"{column}: missing for {share:.1%} of {q.attribute}={q.group} vs {overall:.1%} overall")
    return notes


@dataclass(frozen=True)
class DatasheetReport(Report):
    """The datasheet; its verdict is the discovery stage's (representativeness + collection plan)."""

    kind = "datasheet"
    title = "Datasheet"

    verdict: Verdict
    plan: dict[str, Any] | None
    rows: int
    columns: tuple[str, ...]
    target: str
    positive_label: str
    positive_rate: float
    missing: dict[str, float]
    quality: tuple[GroupQuality, ...]
    notes: tuple[str, ...]
    associations: tuple[Association, ...]
    proxy_threshold: float
    confidence_level: float
    representativeness: dict[str, Any]
    plan_verdict: Verdict
    personal_data: tuple[dict[str, Any], ...]

    @property
    def proxies(self) -> dict[str, list[str]]:
        from kfp_rai.discovery._proxies import proxy_features

        return proxy_features(self.associations)

    def _share_charts(self) -> tuple[Figure, ...]:
        from kfp_rai.core.charts import IntervalRow, interval_chart

        groups = self.representativeness.get("groups", [])
        figures = []
        level = f"{self.representativeness.get('policy', {}).get('confidence_level', 0.95):.0%}"
        for attribute in dict.fromkeys(g["attribute"] for g in groups):
            rows = [
                IntervalRow(
                    g["group"], g["share"], g["ci_low"], g["ci_high"], g["reference_share"], GateStatus(g["status"])
                )
                for g in groups
                if g["attribute"] == attribute
            ]
            caption = (
                f"{attribute}: share of the data (dot, {level} simultaneous interval) against the reference "
                "population (diamond), coloured by the group's verdict."
            )
            chart = interval_chart(rows, title=f"{attribute}: share vs reference", xlabel="share of rows", alt=caption)
            figures.append(Figure(chart, caption))
        return tuple(figures)

    def _base_rate_charts(self) -> tuple[Figure, ...]:
        from kfp_rai.core.charts import IntervalRow, Limit, interval_chart

        figures = []
        for attribute in dict.fromkeys(q.attribute for q in self.quality):
            rows = [
                IntervalRow(q.group, q.base_rate, q.base_rate_low, q.base_rate_high, status=None)
                for q in self.quality
                if q.attribute == attribute
            ]
            caption = (
                f"{attribute}: share of rows labelled {self.positive_label!r} per group ({self.confidence_level:.0%} "
                "Wilson interval); "
                f"dashed line: the whole data ({self.positive_rate:.1%})."
            )
            chart = interval_chart(
                rows,
                title=f"{attribute}: label base rate by group",
                xlabel=f"share {self.positive_label}",
                alt=caption,
                limits=(Limit(self.positive_rate, "overall"),),
            )
            figures.append(Figure(chart, caption))
        return tuple(figures)

    def _proxy_chart(self) -> Figure:
        from kfp_rai.core.charts import bar_chart

        top = self.associations[:12]
        caption = (
            f"The strongest associations of a feature with a sensitive attribute (0 none, 1 a perfect stand-in); "
            f"{self.proxy_threshold} or more marks a proxy."
        )
        return Figure(
            bar_chart(
                [f"{a.feature} ~ {a.attribute}" for a in top],
                [a.strength for a in top],
                title="Proxy features",
                xlabel="association (Cramér's V / correlation ratio)",
                ylabel="feature ~ sensitive attribute",
                alt=caption,
            ),
            caption,
        )

    def sections(self) -> list[Section]:
        plan = self.plan or {}
        not_stated = "Not stated: no data collection plan was given."
        collection = plan.get("collection", {})
        rep = self.representativeness
        proxies = self.proxies
        proxy_lines = tuple(f"{feature}: a proxy of {', '.join(attrs)}" for feature, attrs in proxies.items())
        personal = self.personal_data
        missing_columns = sorted(self.missing)
        return [
            Section(
                "Motivation",
                (
                    f"**{plan.get('title', 'Untitled data set')}.** " + plan.get("purpose", not_stated),
                    Bullets(tuple(f"{o['name']} — {o['role']}" for o in plan.get("owners", ())) or (not_stated,)),
                ),
            ),
            Section(
                "Composition",
                (
                    f"{self.rows} rows, {len(self.columns)} columns. Label: {self.target!r}, "
                    f"{self.positive_rate:.1%} of rows are {self.positive_label!r}.",
                    "Missing values: "
                    + (
                        ", ".join(f"{c} {self.missing[c]:.1%}" for c in missing_columns) if missing_columns else "none."
                    ),
                    "Sensitive attributes: " + ", ".join(plan.get("sensitive_attributes", ()) or ("not stated",)) + ".",
                    "Personal data found when loading: "
                    + (
                        "; ".join(f"{c['column']} ({', '.join(c['kinds'])}): {c['decision']}" for c in personal)
                        if personal
                        else "none detected."
                    ),
                ),
            ),
            Section(
                "Who is in the data, against the population it should represent",
                (
                    f"Reference: {rep.get('reference_source', '—')} ({rep.get('reference_year', '—')}). "
                    f"Verdict: {GateStatus(rep['status']).label if 'status' in rep else '—'}; each group's verdict is "
                    "in the table, every finding at the end of this datasheet.",
                    *self._share_charts(),
                    Table(
                        ("status", "verdict", "attribute", "group", "rows", "share", "expected", "ratio"),
                        tuple(
                            (
                                GateStatus(g["status"]),
                                g["representation"],
                                g["attribute"],
                                g["group"],
                                g["count"],
                                g["share"],
                                g["reference_share"],
                                g["ratio"],
                            )
                            for g in rep.get("groups", [])
                        ),
                    ),
                ),
            ),
            Section(
                "Data quality by group",
                (
                    "What differs between groups before any model is trained:",
                    Bullets(self.notes or ("no group's base rate or missingness stands out.",)),
                    *self._base_rate_charts(),
                    Table(
                        (
                            "attribute",
                            "group",
                            "rows",
                            "base rate",
                            f"{self.confidence_level:.0%} interval",
                            *(f"missing {c}" for c in missing_columns),
                        ),
                        tuple(
                            (
                                q.attribute,
                                q.group,
                                q.rows,
                                q.base_rate,
                                (q.base_rate_low, q.base_rate_high),
                                *(q.missing.get(c) for c in missing_columns),
                            )
                            for q in self.quality
                        ),
                    ),
                ),
            ),
            Section(
                "Proxy features",
                (
                    "A model that never sees a sensitive attribute can still use a feature that stands in for it. "
                    f"Features with an association of {self.proxy_threshold} or more are proxies; explainability "
                    "counts their attribution with the sensitive features'.",
                    Bullets(proxy_lines or ("no feature reaches the threshold.",)),
                    self._proxy_chart(),
                    Table(
                        ("feature", "attribute", "measure", "strength", "NMI", "rows", "proxy"),
                        tuple(
                            (a.feature, a.attribute, a.measure, a.strength, a.nmi, a.rows, a.proxy)
                            for a in self.associations
                        ),
                    ),
                ),
            ),
            Section(
                "Collection process",
                (
                    f"Period: {collection.get('start', '—')} to {collection.get('end', '—')}. "
                    + collection.get("method", not_stated),
                    Bullets(
                        tuple(
                            f"{s['name']}"
                            + (f" ({s['url']})" if s.get("url") else "")
                            + (f": {s['description']}" if s.get("description") else "")
                            for s in plan.get("sources", ())
                        )
                        or (not_stated,)
                    ),
                ),
            ),
            Section("Preprocessing", (plan.get("preprocessing") or "Not stated.",)),
            Section(
                "Uses and known limitations",
                (
                    plan.get("purpose", not_stated),
                    Bullets(tuple(plan.get("known_limitations", ())) or ("none stated.",)),
                ),
            ),
            Section("Distribution", (f"Licence: {plan.get('licence', 'not stated')}.",)),
            Section("Maintenance", (f"Retention: {plan.get('retention', 'not stated')}",)),
            findings_section(self.plan_verdict, "The data against its collection plan"),
            findings_section(self.verdict, "Findings (the discovery stage's verdict)"),
        ]


def write_datasheet(
    df: pd.DataFrame,
    *,
    target: str,
    positive_label: str,
    sensitive_features: Sequence[str],
    features: Sequence[str],
    plan: CollectionPlan | None,
    representativeness: Mapping[str, Any],
    proxy_threshold: float,
    confidence_level: float = 0.95,
    intersections: bool = True,
    personal_data: Sequence[Mapping[str, Any]] = (),
    enforce_plan: bool = True,
) -> DatasheetReport:
    """The datasheet of ``df``: plan, representativeness (the report's JSON), quality, proxies.

    Its verdict combines the representativeness verdict with the data's check against the plan.
    """
    from kfp_rai.discovery._plan import check_plan
    from kfp_rai.discovery._proxies import find_proxies

    plan_verdict = check_plan(df, plan, sensitive_features=sensitive_features, enforce=enforce_plan)
    positive_rate = float((df[target].astype(str) == str(positive_label)).mean())
    missing = {str(c): float(v) for c, v in df.isna().mean().items() if v > 0}
    quality = group_quality(
        df,
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        confidence_level=confidence_level,
        intersections=intersections,
    )
    verdict = Verdict.combine(
        [Verdict.from_dict(representativeness), plan_verdict],
        summary="the data represents its population and matches its collection plan",
    )
    return DatasheetReport(
        verdict=verdict,
        plan=plan.data if plan else None,
        rows=int(len(df)),
        columns=tuple(str(c) for c in df.columns),
        target=target,
        positive_label=str(positive_label),
        positive_rate=positive_rate,
        missing=missing,
        quality=quality,
        notes=tuple(quality_notes(quality, positive_rate, missing)),
        associations=find_proxies(
            df, sensitive_features=sensitive_features, features=features, threshold=proxy_threshold
        ),
        proxy_threshold=proxy_threshold,
        confidence_level=confidence_level,
        representativeness=dict(representativeness),
        plan_verdict=plan_verdict,
        personal_data=tuple(dict(c) for c in personal_data),
    )
