"""Representativeness: each group's share in the data, and each intersection's, against a cited
reference population, with simultaneous intervals and a goodness-of-fit test.

Intervals: Goodman's simultaneous intervals for multinomial proportions (statsmodels
``multinomial_proportions_confint``), so that all shares of one attribute are covered together at
the policy's level. Sison-Glaz is the other method statsmodels offers; it gives every category an
interval of the same width, which misleads when shares differ by two orders of magnitude (Adult's
race: 0.85 and 0.008), and it needs at least 7 categories, so Goodman is used throughout. Goodman's
approximation wants every count >= 5; a group that small is too small to judge anyway.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.groups import intersection_labels, intersection_name
from kfp_rai.core.report import Report, Section, Table, findings_section
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.discovery._reference import ReferencePopulation
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import RepresentativenessPolicy

_RULE_MIN = "representativeness.min_ratio"
_RULE_MAX = "representativeness.max_ratio"
_RULE_SIZE = "representativeness.min_group_size"
_RULE_REFERENCE = "representativeness.reference"
_MIN_EXPECTED = 5  # chi-square's usual rule for a trustworthy p-value
_EPS = 1e-9


class Representation(str, enum.Enum):
    """How a group's share of the data compares with its expected share, in words a reviewer uses."""

    WITHIN = "within tolerance"
    UNDER = "under-represented"
    OVER = "over-represented"
    ABSENT = "absent"
    TOO_SMALL = "too small to judge"
    # Its interval reaches across a limit: not shown to be within tolerance, so it fails the gate like
    # a violation (a record-only policy records it as a warning), but is not called under or over.
    INCONCLUSIVE = "inconclusive: more data needed"
    NOT_IN_REFERENCE = "not in the reference"

    @property
    def status(self) -> GateStatus:
        if self is Representation.WITHIN:
            return GateStatus.PASSED
        if self in (Representation.TOO_SMALL, Representation.NOT_IN_REFERENCE):
            return GateStatus.NOT_JUDGED
        return GateStatus.FAILED


@dataclass(frozen=True)
class GroupShare:
    """One group's share of the data beside its expected share, and how it was judged.

    ``attribute`` is an attribute (``sex``) or an intersection (``sex × race``); ``ci_low`` and
    ``ci_high`` bound the share simultaneously with the attribute's other groups; ``ratio_low`` and
    ``ratio_high`` are those bounds divided by the expected share.
    """

    attribute: str
    group: str
    count: int
    share: float
    ci_low: float
    ci_high: float
    reference_share: float | None
    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    representation: Representation
    status: GateStatus


@dataclass(frozen=True)
class GoodnessOfFit:
    """Pearson's chi-square test of an attribute's counts against its expected shares.

    Evidence, not a gate: with tens of thousands of rows any difference is significant, which is why
    the gate judges ratios. ``approximate`` is true when an expected count is below 5.
    """

    attribute: str
    cells: int
    statistic: float
    dof: int
    p_value: float
    approximate: bool


@dataclass(frozen=True)
class RepresentativenessReport(Report):
    """Per-group and per-intersection shares against the reference, and the discovery gate's verdict."""

    kind = "representativeness_report"
    title = "Representativeness"

    verdict: Verdict
    rows: int
    groups: tuple[GroupShare, ...]
    fits: tuple[GoodnessOfFit, ...]
    reference_source: str
    reference_year: int
    reference_url: str
    policy: dict[str, Any]

    @property
    def attributes(self) -> list[str]:
        """Attributes and intersections, in the order they were judged."""
        return list(dict.fromkeys(g.attribute for g in self.groups))

    def chart(self, attribute: str) -> Any:
        """Each group's ratio of its share to the reference's, with its interval and the tolerance
        band drawn (``min_ratio``..``max_ratio``): a small group's interval shows at its true width,
        as it would not on a share axis. A group without a ratio (not in the reference) is left out
        and said in the caption."""
        from kfp_rai.core.charts import IntervalRow, Limit, interval_chart
        from kfp_rai.core.report import Figure

        groups = [g for g in self.groups if g.attribute == attribute]
        shown = [g for g in groups if g.ratio is not None]
        rows = [IntervalRow(g.group, g.ratio, g.ratio_low, g.ratio_high, 1.0, g.status) for g in shown]  # type: ignore[arg-type]
        low, high = self.policy["min_ratio"], self.policy["max_ratio"]
        level = f"{self.policy['confidence_level']:.0%}"
        left_out = [g.group for g in groups if g.ratio is None]
        caption = (
            f"{attribute}: each group's share of the data divided by its expected share in the reference population "
            f"(dot; line: {level} simultaneous Goodman interval; diamond: 1 = as expected), coloured by the group's "
            f"status; dashed and dotted lines: the tolerance {low}-{high} (named in the legend)."
            + (f" Not drawn (no reference share): {', '.join(left_out)}." if left_out else "")
        )
        return Figure(
            interval_chart(
                rows,
                title=f"{attribute}: share relative to the reference population ({self.reference_year})",
                xlabel="share / expected share",
                alt=caption,
                reference_label="as expected (1)",
                limits=(Limit(low, f"min {low}"), Limit(high, f"max {high}")),
            ),
            caption,
        )

    def sections(self) -> list[Section]:
        p = self.policy
        level = f"{p['confidence_level']:.0%}"
        table = Table(
            (
                "status",
                "verdict",
                "attribute",
                "group",
                "rows",
                "share",
                f"{level} simultaneous interval",
                "expected",
                "ratio",
                "ratio interval",
            ),
            tuple(
                (
                    g.status,
                    g.representation.value,
                    g.attribute,
                    g.group,
                    g.count,
                    g.share,
                    (g.ci_low, g.ci_high),
                    g.reference_share,
                    g.ratio,
                    (g.ratio_low, g.ratio_high) if g.ratio_low is not None else None,
                )
                for g in self.groups
            ),
        )
        fits = Table(
            ("attribute", "groups", "chi-square", "dof", "p-value", "note"),
            tuple(
                (
                    f.attribute,
                    f.cells,
                    f.statistic,
                    f.dof,
                    f.p_value,
                    "approximate: an expected count < 5" if f.approximate else "",
                )
                for f in self.fits
            ),
        )
        source = f"{self.reference_source} ({self.reference_year})" + (
            f", {self.reference_url}" if self.reference_url else ""
        )
        on = (
            "the ratio itself"
            if p["judge_on"] == "point"
            else "the least favourable end of the ratio's interval (a group whose interval crosses both limits is too "
            "small to judge)"
        )
        return [
            Section(
                "Rule",
                (
                    f"Reference population: {source}.",
                    "Ratio = a group's share of the data / its expected share. Under-represented below "
                    f"{p['min_ratio']}, over-represented above {p['max_ratio']}, judged on {on}. A group with fewer "
                    f"than {p['min_group_size']} rows is too small to judge and a group the reference does not "
                    "describe cannot be compared: both fail closed. A group the reference expects but the data "
                    "lacks is absent. "
                    f"Enforced: {'yes' if p['enforce'] else 'no (violations recorded as warnings)'}.",
                    f"Shares carry {level} simultaneous intervals (Goodman, statsmodels): all groups of one attribute "
                    "are covered together, not one at a time."
                    + (
                        " Intersections are expected at the product of their attributes' reference shares (the "
                        "reference gives no joint shares, so independence is assumed: a caveat to read with them)."
                        if p["intersections"]
                        else " Intersections are not judged (policy)."
                    ),
                    f"{self.rows} rows checked.",
                ),
            ),
            findings_section(self.verdict),
            Section("Shares against the reference", tuple(self.chart(a) for a in self.attributes)),
            Section("Shares by group", (table,)),
            Section(
                "Goodness of fit (Pearson chi-square against the expected shares; evidence, not the gate)", (fits,)
            ),
        ]


def _simultaneous(counts: np.ndarray, level: float) -> np.ndarray:
    """Goodman's simultaneous intervals, (k, 2); a single category is the whole data."""
    from statsmodels.stats.proportion import multinomial_proportions_confint

    if len(counts) < 2:
        return np.ones((len(counts), 2))
    bounds = np.asarray(multinomial_proportions_confint(counts, alpha=1 - level, method="goodman"), dtype=float)
    clipped: np.ndarray = np.clip(bounds, 0.0, 1.0)
    return clipped


def _judgement(
    count: int, n: int, ref: float, low: float, high: float, policy: RepresentativenessPolicy
) -> tuple[Representation, str]:
    """The group's representation and the clause that says why (ratio bounds are ``low``/``high``).

    Limits are compared with a tolerance of 1e-9: shares normalized to sum to 1 put a ratio of
    exactly 0.8 at 0.79999999999999.
    """
    share = count / n
    ratio = share / ref
    if count == 0:
        expected = ref * n
        if expected < policy.min_group_size:
            return Representation.TOO_SMALL, (
                f"absent, but only {expected:.1f} rows were expected (< minimum {policy.min_group_size}): too small "
                "to judge"
            )
        return Representation.ABSENT, f"absent from the data (expected share {ref:.3f}, {expected:.0f} rows)"
    said = f"share {share:.3f} is {ratio:.3f}x its expected share {ref:.3f}"
    if count < policy.min_group_size:
        return Representation.TOO_SMALL, f"{count} rows < minimum {policy.min_group_size}: too small to judge ({said})"
    # A verdict never says more than its interval: a group is under- (over-) represented only when its
    # whole interval lies below (above) the limit; an interval reaching across a limit is inconclusive.
    bounds = f"interval {low:.3f}-{high:.3f}x"
    if high < policy.min_ratio - _EPS:
        return Representation.UNDER, f"{said}; its {bounds} lies below {policy.min_ratio}: under-represented"
    if low > policy.max_ratio + _EPS:
        return Representation.OVER, f"{said}; its {bounds} lies above {policy.max_ratio}: over-represented"
    if policy.judge_on == "interval":  # the whole interval must lie within the limits
        outside = low < policy.min_ratio - _EPS or high > policy.max_ratio + _EPS
    else:  # the point decides, unless its interval reaches back across the limit it is past
        outside = ratio < policy.min_ratio - _EPS or ratio > policy.max_ratio + _EPS
    if outside:
        if low < policy.min_ratio - _EPS and high > policy.max_ratio + _EPS:
            return Representation.TOO_SMALL, f"{said}, but its {bounds} reaches across both limits: too small to judge"
        limit = policy.min_ratio if min(low, ratio) < policy.min_ratio - _EPS else policy.max_ratio
        why = f"{said}, but its {bounds} reaches across {limit}: inconclusive, more data needed"
        return Representation.INCONCLUSIVE, why
    if policy.judge_on == "interval":
        return Representation.WITHIN, f"{said}; its {bounds} lies within {policy.min_ratio}-{policy.max_ratio}"
    return Representation.WITHIN, f"{said} (within {policy.min_ratio}-{policy.max_ratio})"


def _goodness_of_fit(name: str, counts: dict[str, int], expected: dict[str, float]) -> GoodnessOfFit | None:
    """Chi-square over the groups the reference describes (shares > 0), or None without data there."""
    from scipy.stats import chisquare

    cells = [g for g, share in expected.items() if share > 0]
    observed = np.array([counts.get(g, 0) for g in cells], dtype=float)
    n = observed.sum()
    if n == 0 or len(cells) < 2:
        return None
    shares = np.array([expected[g] for g in cells])
    f_exp = n * shares / shares.sum()
    result = chisquare(observed, f_exp)
    return GoodnessOfFit(
        attribute=name,
        cells=len(cells),
        statistic=float(result.statistic),
        dof=len(cells) - 1,
        p_value=float(result.pvalue),
        approximate=bool((f_exp < _MIN_EXPECTED).any()),
    )


def judge_shares(
    name: str, counts: dict[str, int], expected: dict[str, float], policy: RepresentativenessPolicy
) -> tuple[list[GroupShare], list[Finding]]:
    """Judge every group of one attribute (or intersection) from its counts and expected shares.

    The groups are the union of those in the data and those the reference expects (a share > 0);
    intervals are simultaneous over all of them.
    """
    labels = sorted(set(counts) | {g for g, share in expected.items() if share > 0})
    observed = np.array([counts.get(g, 0) for g in labels], dtype=float)
    n = int(observed.sum())
    bounds = _simultaneous(observed, policy.confidence_level)
    groups, findings = [], []
    for (label, count), (low, high) in zip(
        zip(labels, observed.astype(int).tolist(), strict=True), bounds, strict=True
    ):
        subject = f"{name}={label}"
        share = count / n
        ref = expected.get(label)
        ratio: float | None = None
        ratio_low: float | None = None
        ratio_high: float | None = None
        limit: float | int | None = None
        if ref is None or ref <= 0:
            representation = Representation.NOT_IN_REFERENCE
            why = "not in the reference population's mapping" if ref is None else "its reference share is 0"
            message = f"{subject}: {why}, so its share ({share:.3f}) cannot be compared"
            rule = _RULE_REFERENCE
        else:
            ratio, ratio_low, ratio_high = share / ref, float(low) / ref, float(high) / ref
            representation, clause = _judgement(count, n, ref, ratio_low, ratio_high, policy)
            message = f"{subject}: {clause}"
            if representation is Representation.TOO_SMALL and count < policy.min_group_size:  # or expected so
                rule, limit = _RULE_SIZE, policy.min_group_size
            elif representation is Representation.TOO_SMALL:  # an interval across both limits
                rule = "representativeness.judge_on"
            elif representation is Representation.INCONCLUSIVE:  # judged against the limit it reaches across
                below = min(ratio, ratio_low) < policy.min_ratio - _EPS
                rule, limit = (_RULE_MIN, policy.min_ratio) if below else (_RULE_MAX, policy.max_ratio)
            elif representation is Representation.OVER or (representation is Representation.WITHIN and ratio > 1):
                rule, limit = _RULE_MAX, policy.max_ratio
            else:
                rule, limit = _RULE_MIN, policy.min_ratio
        status = representation.status
        interval = (ratio_low, ratio_high) if ratio_low is not None and ratio_high is not None else None
        observed_value: float | int | None = count if rule == _RULE_SIZE else ratio
        findings.append(
            Finding(rule, subject, status, message, observed=observed_value, limit=limit, interval=interval)
        )
        groups.append(
            GroupShare(
                attribute=name,
                group=label,
                count=count,
                share=share,
                ci_low=float(low),
                ci_high=float(high),
                reference_share=ref,
                ratio=ratio,
                ratio_low=ratio_low,
                ratio_high=ratio_high,
                representation=representation,
                status=status,
            )
        )
    return groups, findings


def _expected_intersection(reference: ReferencePopulation, attributes: Sequence[str]) -> dict[str, float]:
    """Expected share of each intersectional group: the product of its attributes' shares."""
    from kfp_rai.core.groups import INTERSECTION_SEP

    out = {}
    for combo in itertools.product(*(reference.shares[a].items() for a in attributes)):
        out[INTERSECTION_SEP.join(label for label, _ in combo)] = float(np.prod([share for _, share in combo]))
    return out


def check_representativeness(
    df: pd.DataFrame,
    reference: ReferencePopulation,
    *,
    sensitive_features: Sequence[str],
    policy: RepresentativenessPolicy | None = None,
) -> RepresentativenessReport:
    """Compare every group's share of ``df``, and every intersection's, with its expected share.

    Each group gets a simultaneous interval, a ratio to its expected share and one verdict: within
    tolerance, under- or over-represented (``policy.min_ratio``/``max_ratio``, on the point or the
    interval per ``policy.judge_on``), absent, too small to judge (fewer than
    ``policy.min_group_size`` rows), or not in the reference. Each attribute and intersection also
    gets a chi-square goodness-of-fit test. What cannot be compared is not judged: fails closed.

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
    groups: list[GroupShare] = []
    findings: list[Finding] = []
    fits: list[GoodnessOfFit] = []
    described = []
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
        described.append(attr)
    combos: list[tuple[str, ...]] = [(a,) for a in described]
    if policy.intersections:
        combos += [c for size in range(2, len(described) + 1) for c in itertools.combinations(described, size)]
    for combo in combos:
        name = intersection_name(combo)
        counts = {str(k): int(v) for k, v in intersection_labels(df, combo).value_counts().items()}
        expected = reference.shares[combo[0]] if len(combo) == 1 else _expected_intersection(reference, combo)
        judged, said = judge_shares(name, counts, expected, policy)
        groups += judged
        findings += said
        fit = _goodness_of_fit(name, counts, expected)
        if fit is not None:
            fits.append(fit)
    verdict = Verdict.judge(
        findings,
        summary=f"every group of {', '.join(sensitive_features)} and their intersections is within policy against "
        f"{reference.source}",
        enforce=policy.enforce,
    )
    status_of = {f.subject: f.status for f in verdict.findings}
    return RepresentativenessReport(
        verdict=verdict,
        rows=int(len(df)),
        groups=tuple(GroupShare(**{**g.__dict__, "status": status_of[f"{g.attribute}={g.group}"]}) for g in groups),
        fits=tuple(fits),
        reference_source=reference.source,
        reference_year=reference.year,
        reference_url=reference.url,
        policy=policy.to_dict(),
    )
