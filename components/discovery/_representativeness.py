"""Representativeness: each group's share in the data against a cited reference population."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import yaml
from scipy.stats import norm

from kfp_rai._report import Report, Section, Table
from kfp_rai.errors import DataValidationError, InvalidParameterError
from kfp_rai.io import parse_text_file
from kfp_rai.policy import RepresentativenessPolicy

_SHARE_TOLERANCE = 0.01


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound near 0 and 1, unlike the normal interval)."""
    if n == 0:
        return (0.0, 1.0)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


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
        if not isinstance(data["attributes"], dict) or not data["attributes"]:
            raise InvalidParameterError("reference population 'attributes' must map attribute names to shares")
        shares: dict[str, dict[str, float]] = {}
        for attr, spec in data["attributes"].items():
            if not isinstance(spec, dict) or not isinstance(spec.get("shares"), dict):
                raise InvalidParameterError(f"reference attribute {attr!r} needs a 'shares' mapping")
            source_shares = spec["shares"]
            for cat, share in source_shares.items():
                if isinstance(share, bool) or not isinstance(share, (int, float)) or share < 0:
                    raise InvalidParameterError(f"share of {attr}={cat!r} must be a number >= 0, got {share!r}")
            total = float(sum(source_shares.values()))
            if abs(total - 1.0) > _SHARE_TOLERANCE:
                raise InvalidParameterError(f"shares of {attr!r} add up to {total:.3f}, not 1")
            mapping = spec.get("mapping") or {c: [c] for c in source_shares}
            used: list[str] = []
            mapped: dict[str, float] = {}
            for label, cats in mapping.items():
                cats = [cats] if isinstance(cats, str) else list(cats)
                for cat in cats:
                    if cat not in source_shares:
                        raise InvalidParameterError(
                            f"mapping of {attr}={label!r} names {cat!r}, which is not among the source's categories"
                        )
                used += cats
                mapped[str(label)] = sum(float(source_shares[c]) for c in cats) / total
            if len(used) != len(set(used)):
                raise InvalidParameterError(f"a source category of {attr!r} is mapped to two data labels")
            shares[str(attr)] = mapped
        return cls(source=str(data["source"]), year=int(data["year"]), url=str(data.get("url", "")), shares=shares)

    @classmethod
    def from_yaml(cls, text: str) -> ReferencePopulation:
        try:
            return cls.from_dict(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise InvalidParameterError(f"the reference population is not valid YAML: {exc}") from exc

    @classmethod
    def load(cls, path: str) -> ReferencePopulation:
        return parse_text_file(path, "reference population", cls.from_yaml)

    @classmethod
    def default(cls) -> ReferencePopulation:
        """The bundled US Census 2000 shares for Adult's ``sex`` and ``race``."""
        from kfp_rai.datasets import data_path

        return cls.load(str(data_path("reference_population_us_census2000.yaml")))


@dataclass(frozen=True)
class GroupShare:
    attribute: str
    group: str
    count: int
    share: float
    ci_low: float
    ci_high: float
    reference_share: float
    difference: float
    ratio: float | None
    passed: bool
    problem: str


@dataclass(frozen=True)
class RepresentativenessReport(Report):
    """Per-group shares against the reference, and the discovery gate's verdict."""

    kind = "representativeness_report"
    title = "Representativeness"

    passed: bool
    reason: str
    rows: int
    groups: tuple[GroupShare, ...]
    violations: tuple[str, ...]
    reference_source: str
    reference_year: int
    min_ratio: float
    min_group_size: int
    enforced: bool
    confidence_level: float = 0.95

    def sections(self) -> list[Section]:
        table = Table(
            (
                "attribute",
                "group",
                "rows",
                "share",
                f"{self.confidence_level:.0%} CI",
                "reference",
                "difference",
                "ratio",
                "ok",
            ),
            tuple(
                (
                    g.attribute,
                    g.group,
                    g.count,
                    g.share,
                    f"{g.ci_low:.3f}–{g.ci_high:.3f}",
                    g.reference_share,
                    g.difference,
                    g.ratio,
                    g.passed,
                )
                for g in self.groups
            ),
        )
        return [
            Section(
                "Reference",
                (
                    f"Source: {self.reference_source} ({self.reference_year}).",
                    f"Rule: every group's share / reference share >= {self.min_ratio} and at least "
                    f"{self.min_group_size} rows. Enforced: {'yes' if self.enforced else 'no (warnings only)'}.",
                ),
            ),
            Section("Shares by group", (table,)),
            Section("Violations", ("\n".join(f"- {v}" for v in self.violations) or "None.",)),
        ]


def check_representativeness(
    df: pd.DataFrame,
    reference: ReferencePopulation,
    *,
    sensitive_features: Sequence[str],
    policy: RepresentativenessPolicy | None = None,
) -> RepresentativenessReport:
    """Compare every group's share of ``df`` with its reference population share.

    A group fails when its share / reference share is below ``policy.min_ratio``, when it has fewer
    than ``policy.min_group_size`` rows, or when it is absent from the data or from the reference
    (fail closed: what cannot be compared does not pass).

    Parameters
    ----------
    df : DataFrame
    reference : ReferencePopulation
    sensitive_features : list of str
        Columns to check; each must be described by ``reference``.
    policy : RepresentativenessPolicy, optional

    Returns
    -------
    RepresentativenessReport
    """
    policy = policy or RepresentativenessPolicy()
    if df.empty:
        raise DataValidationError("cannot check representativeness of an empty data set")
    groups: list[GroupShare] = []
    violations: list[str] = []
    for attr in sensitive_features:
        if attr not in df.columns:
            raise DataValidationError(f"sensitive feature {attr!r} is not a column of the data")
        if attr not in reference.shares:
            violations.append(f"{attr}: the reference population ({reference.source}) has no shares for it")
            continue
        column = df[attr].astype("string").fillna("<missing>")
        counts = column.value_counts()
        n = int(counts.sum())
        ref = reference.shares[attr]
        for group in sorted(set(counts.index) | set(ref)):
            count = int(counts.get(group, 0))
            share = count / n
            low, high = wilson_interval(count, n, policy.confidence_level)
            ref_share = ref.get(group)
            problems = []
            if ref_share is None:
                problems.append("not in the reference population's mapping")
                ratio = None
                ref_share_value = float("nan")
            else:
                ratio = share / ref_share if ref_share > 0 else None
                ref_share_value = ref_share
                if ratio is not None and ratio < policy.min_ratio:
                    problems.append(
                        f"share {share:.3f} is {ratio:.2f}x its population share {ref_share:.3f} (< {policy.min_ratio})"
                    )
            if count < policy.min_group_size:
                problems.append(f"{count} rows < minimum {policy.min_group_size}")
            problem = "; ".join(problems)
            if problem:
                violations.append(f"{attr}={group}: {problem}")
            groups.append(
                GroupShare(
                    attribute=attr,
                    group=str(group),
                    count=count,
                    share=share,
                    ci_low=low,
                    ci_high=high,
                    reference_share=ref_share_value,
                    difference=share - ref_share_value if ref_share is not None else float("nan"),
                    ratio=ratio,
                    passed=not problem,
                    problem=problem,
                )
            )
    if violations:
        head = f"{len(violations)} group(s) under-represented or unmeasurable: " + "; ".join(violations[:3])
        head += " ..." if len(violations) > 3 else ""
        passed = not policy.enforce
        reason = head if policy.enforce else "warning (policy does not enforce): " + head
    else:
        passed, reason = True, f"all groups of {', '.join(sensitive_features)} within policy"
    return RepresentativenessReport(
        passed=passed,
        reason=reason,
        rows=int(len(df)),
        groups=tuple(groups),
        violations=tuple(violations),
        reference_source=reference.source,
        reference_year=reference.year,
        min_ratio=policy.min_ratio,
        min_group_size=policy.min_group_size,
        enforced=policy.enforce,
        confidence_level=policy.confidence_level,
    )
