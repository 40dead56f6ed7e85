"""Representativeness: each group's share in the data against a cited reference population."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from kfp_rai.core.files import load_yaml, read_text_file
from kfp_rai.core.groups import group_labels
from kfp_rai.core.numbers import is_finite_number
from kfp_rai.core.report import Report, Section, Table, findings_section
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.errors import DataValidationError, InvalidParameterError
from kfp_rai.policy import RepresentativenessPolicy
from kfp_rai.stats.intervals import wilson_interval

_SHARE_TOLERANCE = 0.01
_RULE_RATIO = "representativeness.min_ratio"
_RULE_SIZE = "representativeness.min_group_size"
_RULE_REFERENCE = "representativeness.reference"


def _share(attr: str, cat: Any, value: Any) -> float:
    if not is_finite_number(value) or value < 0:
        raise InvalidParameterError(f"share of {attr}={cat!r} must be a finite number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ReferencePopulation:
    """Population shares per sensitive attribute, from a cited source, with a written mapping
    from the data's labels to the source's categories.

    Attributes
    ----------
    source, year, url : str, int, str
        Where the shares come from.
    shares : dict
        attribute -> data label -> population share (mapped and normalized to sum to 1).
    """

    source: str
    year: int
    url: str
    shares: dict[str, dict[str, float]]

    @classmethod
    def from_dict(cls, data: Any) -> ReferencePopulation:
        if not isinstance(data, dict):
            raise InvalidParameterError(
                "a reference population must be a mapping with 'source', 'year' and 'attributes'"
            )
        for key in ("source", "year", "attributes"):
            if key not in data:
                raise InvalidParameterError(
                    f"the reference population lacks {key!r}: say which source and year it uses"
                )
        year = data["year"]
        if isinstance(year, bool) or not isinstance(year, int):
            raise InvalidParameterError(f"the reference population's 'year' must be a whole year, got {year!r}")
        if not isinstance(data["attributes"], dict) or not data["attributes"]:
            raise InvalidParameterError("reference population 'attributes' must map attribute names to shares")
        shares: dict[str, dict[str, float]] = {}
        for attr, spec in data["attributes"].items():
            if not isinstance(spec, dict) or not isinstance(spec.get("shares"), dict) or not spec["shares"]:
                raise InvalidParameterError(f"reference attribute {attr!r} needs a 'shares' mapping")
            source_shares = {str(cat): _share(attr, cat, v) for cat, v in spec["shares"].items()}
            total = sum(source_shares.values())
            if abs(total - 1.0) > _SHARE_TOLERANCE:
                raise InvalidParameterError(f"shares of {attr!r} add up to {total:.3f}, not 1")
            mapping = spec.get("mapping") or {c: [c] for c in source_shares}
            if not isinstance(mapping, dict):
                raise InvalidParameterError(f"the mapping of {attr!r} must map data labels to source categories")
            used: list[str] = []
            mapped: dict[str, float] = {}
            for label, cats in mapping.items():
                cats = [cats] if isinstance(cats, str) else cats
                if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
                    raise InvalidParameterError(
                        f"mapping of {attr}={label!r} must name source categories (text), got {cats!r}"
                    )
                for cat in cats:
                    if cat not in source_shares:
                        raise InvalidParameterError(
                            f"mapping of {attr}={label!r} names {cat!r}, which is not among the source's categories"
                        )
                used += cats
                mapped[str(label)] = sum(source_shares[c] for c in cats) / total
            if len(used) != len(set(used)):
                raise InvalidParameterError(f"a source category of {attr!r} is mapped to two data labels")
            shares[str(attr)] = mapped
        return cls(source=str(data["source"]), year=year, url=str(data.get("url", "")), shares=shares)

    @classmethod
    def from_yaml(cls, text: str) -> ReferencePopulation:
        return cls.from_dict(load_yaml(text, "reference population"))

    @classmethod
    def load(cls, path: str) -> ReferencePopulation:
        return read_text_file(path, "reference population", cls.from_yaml)

    @classmethod
    def default(cls) -> ReferencePopulation:
        """The bundled US Census 2000 shares for Adult's ``sex`` and ``race``."""
        from kfp_rai.core.bundled import data_path

        return cls.load(str(data_path("reference_population_us_census2000.yaml")))


@dataclass(frozen=True)
class GroupShare:
    """One group's share of the data beside its reference share, and how it was judged."""

    attribute: str
    group: str
    count: int
    share: float
    ci_low: float
    ci_high: float
    reference_share: float | None
    ratio: float | None
    status: GateStatus


@dataclass(frozen=True)
class RepresentativenessReport(Report):
    """Per-group shares against the reference, and the discovery gate's verdict."""

    kind = "representativeness_report"
    title = "Representativeness"

    verdict: Verdict
    rows: int
    groups: tuple[GroupShare, ...]
    reference_source: str
    reference_year: int
    reference_url: str
    policy: dict[str, Any]

    def _chart(self, attribute: str) -> Any:
        from kfp_rai.core.charts import IntervalRow, interval_chart
        from kfp_rai.core.report import Figure

        groups = [g for g in self.groups if g.attribute == attribute]
        rows = [IntervalRow(g.group, g.share, g.ci_low, g.ci_high, g.reference_share, g.status) for g in groups]
        level = f"{self.policy['confidence_level']:.0%}"
        caption = (
            f"{attribute}: each group's share of the data (dot, {level} Wilson interval) against its share "
            f"of the reference population (diamond), coloured by the group's status."
        )
        return Figure(
            interval_chart(
                rows,
                title=f"{attribute}: share of the data vs the reference population ({self.reference_year})",
                xlabel="share of rows",
                alt=caption,
                reference_label=f"reference ({self.reference_year})",
            ),
            caption,
        )

    def sections(self) -> list[Section]:
        p = self.policy
        level = f"{p['confidence_level']:.0%}"
        table = Table(
            ("status", "attribute", "group", "rows", "share", f"{level} interval", "reference", "ratio"),
            tuple(
                (g.status, g.attribute, g.group, g.count, g.share, (g.ci_low, g.ci_high), g.reference_share, g.ratio)
                for g in self.groups
            ),
        )
        attributes = list(dict.fromkeys(g.attribute for g in self.groups))
        source = f"{self.reference_source} ({self.reference_year})" + (
            f", {self.reference_url}" if self.reference_url else ""
        )
        return [
            Section(
                "Rule",
                (
                    f"Reference population: {source}.",
                    f"Every group's share / reference share must be >= {p['min_ratio']} and every group needs at "
                    f"least {p['min_group_size']} rows. A group missing from the reference cannot be compared: "
                    f"not judged. Enforced: {'yes' if p['enforce'] else 'no (violations recorded as warnings)'}.",
                    f"{self.rows} rows checked.",
                ),
            ),
            findings_section(self.verdict),
            Section("Shares against the reference", tuple(self._chart(a) for a in attributes)),
            Section("Shares by group", (table,)),
        ]


def _group_findings(
    attr: str, group: str, count: int, n: int, ref_share: float | None, policy: RepresentativenessPolicy
) -> list[Finding]:
    subject = f"{attr}={group}"
    share = count / n
    if ref_share is None:
        return [
            Finding(
                _RULE_REFERENCE,
                subject,
                GateStatus.NOT_JUDGED,
                f"{subject}: not in the reference population's mapping, so its share cannot be compared",
                observed=share,
            )
        ]
    findings = []
    if ref_share <= 0:
        findings.append(
            Finding(
                _RULE_REFERENCE,
                subject,
                GateStatus.NOT_JUDGED,
                f"{subject}: its reference share is 0, so no ratio can be formed",
                observed=share,
            )
        )
    else:
        ratio = share / ref_share
        low, high = wilson_interval(count, n, policy.confidence_level)
        ok = ratio >= policy.min_ratio
        message = (
            f"{subject}: absent from the data (reference share {ref_share:.3f})"
            if count == 0
            else f"{subject}: share {share:.3f} is {ratio:.2f}x its population share {ref_share:.3f}"
            + ("" if ok else f" (< {policy.min_ratio})")
        )
        findings.append(
            Finding(
                _RULE_RATIO,
                subject,
                GateStatus.PASSED if ok else GateStatus.FAILED,
                message,
                observed=ratio,
                limit=policy.min_ratio,
                interval=(low / ref_share, high / ref_share),
            )
        )
    if count > 0:
        big_enough = count >= policy.min_group_size
        findings.append(
            Finding(
                _RULE_SIZE,
                subject,
                GateStatus.PASSED if big_enough else GateStatus.FAILED,
                f"{subject}: {count} rows" + ("" if big_enough else f" < minimum {policy.min_group_size}"),
                observed=count,
                limit=policy.min_group_size,
            )
        )
    return findings


def check_representativeness(
    df: pd.DataFrame,
    reference: ReferencePopulation,
    *,
    sensitive_features: Sequence[str],
    policy: RepresentativenessPolicy | None = None,
) -> RepresentativenessReport:
    """Compare every group's share of ``df`` with its reference population share.

    Each group is checked against two rules: share / reference share >= ``policy.min_ratio`` (a group
    absent from the data has ratio 0) and at least ``policy.min_group_size`` rows. What cannot be
    compared (a group the reference does not map, an attribute it has no shares for) is not judged,
    which fails closed.

    Parameters
    ----------
    df : DataFrame
    reference : ReferencePopulation
    sensitive_features : list of str
        Columns to check; each should be described by ``reference``.
    policy : RepresentativenessPolicy, optional

    Returns
    -------
    RepresentativenessReport
    """
    policy = policy or RepresentativenessPolicy()
    if df.empty:
        raise DataValidationError("cannot check representativeness of an empty data set")
    groups: list[tuple[str, str, int, int, float | None]] = []
    findings: list[Finding] = []
    for attr in sensitive_features:
        if attr not in df.columns:
            raise DataValidationError(f"sensitive feature {attr!r} is not a column of the data")
        if attr not in reference.shares:
            findings.append(
                Finding(
                    _RULE_REFERENCE,
                    attr,
                    GateStatus.NOT_JUDGED,
                    f"{attr}: the reference population ({reference.source}) has no shares for it",
                )
            )
            continue
        counts = group_labels(df[attr]).value_counts()
        n = int(counts.sum())
        ref = reference.shares[attr]
        for group in sorted(set(counts.index) | set(ref)):
            count = int(counts.get(group, 0))
            groups.append((attr, str(group), count, n, ref.get(group)))
            findings += _group_findings(attr, str(group), count, n, ref.get(group), policy)
    verdict = Verdict.judge(
        findings,
        summary=f"every group of {', '.join(sensitive_features)} is within policy against {reference.source}",
        enforce=policy.enforce,
    )
    shares = []
    for attr, group, count, n, ref_share in groups:
        subject = f"{attr}={group}"
        low, high = wilson_interval(count, n, policy.confidence_level)
        shares.append(
            GroupShare(
                attribute=attr,
                group=group,
                count=count,
                share=count / n,
                ci_low=low,
                ci_high=high,
                reference_share=ref_share,
                ratio=count / n / ref_share if ref_share else None,
                status=GateStatus.worst(f.status for f in verdict.findings if f.subject == subject),
            )
        )
    return RepresentativenessReport(
        verdict=verdict,
        rows=int(len(df)),
        groups=tuple(shares),
        reference_source=reference.source,
        reference_year=reference.year,
        reference_url=reference.url,
        policy=policy.to_dict(),
    )
