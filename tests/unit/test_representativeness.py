import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from kfp_rai.core.verdict import GateStatus
from kfp_rai.discovery import ReferencePopulation, Representation, check_representativeness
from kfp_rai.errors import InvalidParameterError
from kfp_rai.policy import RepresentativenessPolicy
from kfp_rai.stats.intervals import wilson_interval

REF = ReferencePopulation.from_dict(
    {"source": "test", "year": 2020, "attributes": {"g": {"shares": {"a": 0.5, "b": 0.5}}}}
)


def test_adult_fails_on_women_and_small_race_groups_and_their_intersections(adult):
    report = check_representativeness(adult, ReferencePopulation.default(), sensitive_features=["sex", "race"])
    assert not report.passed and report.status is GateStatus.FAILED
    by = {(g.attribute, g.group): g for g in report.groups}
    female = by["sex", "Female"]
    assert female.count == 10771
    assert female.share == pytest.approx(0.331, abs=0.001)
    assert female.reference_share == pytest.approx(0.509, abs=0.001)
    assert female.ratio == pytest.approx(0.65, abs=0.01) and female.status is GateStatus.FAILED
    assert female.representation is Representation.UNDER and by["sex", "Male"].representation is Representation.OVER
    assert female.ci_low < female.share < female.ci_high
    assert by["race", "Other"].representation is Representation.UNDER
    assert by["race", "White"].representation is Representation.WITHIN
    # Every intersection of sex and race is judged, against the product of the reference shares.
    cells = [g for g in report.groups if g.attribute == "sex × race"]
    assert len(cells) == 10 and sum(g.count for g in cells) == len(adult)
    other = by["sex × race", "Female × Other"]
    assert other.reference_share == pytest.approx(
        ReferencePopulation.default().shares["sex"]["Female"] * ReferencePopulation.default().shares["race"]["Other"]
    )
    assert other.representation is Representation.UNDER and other.count == 109
    assert {f.attribute for f in report.fits} == {"sex", "race", "sex × race"}
    ratio = next(f for f in report.verdict.findings if f.subject == "sex=Female")
    assert ratio.rule == "representativeness.min_ratio" and ratio.limit == 0.8
    assert ratio.interval[0] < ratio.observed < ratio.interval[1]
    # The reason names every problem in full: nothing cut with "...".
    assert all(f.message in report.reason for f in report.verdict.problems) and "..." not in report.reason


def _goodman(counts, level):
    """Goodman (1965) simultaneous intervals, written out from the paper's formula."""
    counts = np.asarray(counts, dtype=float)
    n, k = counts.sum(), len(counts)
    a = chi2.ppf(1 - (1 - level) / k, 1)
    spread = np.sqrt(a * (a + 4 * counts * (n - counts) / n))
    return (a + 2 * counts - spread) / (2 * (n + a)), (a + 2 * counts + spread) / (2 * (n + a))


def test_intervals_are_goodmans_simultaneous_intervals_and_wider_than_one_at_a_time():
    df = pd.DataFrame({"g": ["a"] * 620 + ["b"] * 300 + ["c"] * 80})
    ref = ReferencePopulation.from_dict(
        {"source": "t", "year": 2020, "attributes": {"g": {"shares": {"a": 0.6, "b": 0.3, "c": 0.1}}}}
    )
    groups = check_representativeness(df, ref, sensitive_features=["g"]).groups
    low, high = _goodman([620, 300, 80], 0.95)
    assert [g.ci_low for g in groups] == pytest.approx(low, abs=1e-12)
    assert [g.ci_high for g in groups] == pytest.approx(high, abs=1e-12)
    wilson = wilson_interval(80, 1000, 0.95)
    assert groups[2].ci_high - groups[2].ci_low > wilson[1] - wilson[0]
    assert groups[2].ratio_low == pytest.approx(low[2] / 0.1) and groups[2].ratio_high == pytest.approx(high[2] / 0.1)


def test_goodness_of_fit_is_pearsons_chi_square():
    df = pd.DataFrame({"g": ["a"] * 60 + ["b"] * 40})
    (fit,) = check_representativeness(df, REF, sensitive_features=["g"]).fits
    # (60 - 50)^2 / 50 + (40 - 50)^2 / 50 = 4, one degree of freedom: p = 0.0455
    assert fit.statistic == pytest.approx(4.0) and fit.dof == 1 and fit.p_value == pytest.approx(0.0455, abs=1e-4)
    assert not fit.approximate
    (small,) = check_representativeness(df.head(8), REF, sensitive_features=["g"]).fits
    assert small.approximate


def test_balanced_data_passes():
    df = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 45})
    report = check_representativeness(df, REF, sensitive_features=["g"])
    assert report.passed, report.reason
    assert {g.representation for g in report.groups} == {Representation.WITHIN}


def test_small_and_unmapped_groups_fail_closed():
    df = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 45 + ["c"] * 5})
    report = check_representativeness(df, REF, sensitive_features=["g"], policy=RepresentativenessPolicy())
    assert not report.passed
    c = next(f for f in report.verdict.findings if f.subject == "g=c")
    assert c.rule == "representativeness.reference" and c.status is GateStatus.NOT_JUDGED
    assert "not in the reference" in c.message
    small = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 20})
    report = check_representativeness(small, REF, sensitive_features=["g"])
    sized = next(f for f in report.verdict.findings if f.subject == "g=b")
    assert sized.rule == "representativeness.min_group_size" and sized.status is GateStatus.NOT_JUDGED
    assert "20 rows < minimum 30: too small to judge" in sized.message
    assert report.groups[1].representation is Representation.TOO_SMALL


def test_intersections_catch_what_the_marginals_hide():
    # Each attribute is exactly at its reference share, but women are almost all in group x.
    df = pd.DataFrame({"g": ["a"] * 500 + ["b"] * 500, "h": ["x"] * 450 + ["y"] * 50 + ["x"] * 50 + ["y"] * 450})
    ref = ReferencePopulation.from_dict(
        {
            "source": "t",
            "year": 2020,
            "attributes": {"g": {"shares": {"a": 0.5, "b": 0.5}}, "h": {"shares": {"x": 0.5, "y": 0.5}}},
        }
    )
    report = check_representativeness(df, ref, sensitive_features=["g", "h"])
    by = {(g.attribute, g.group): g for g in report.groups}
    assert by["g", "a"].representation is Representation.WITHIN and by["h", "y"].representation is Representation.WITHIN
    assert by["g × h", "a × y"].representation is Representation.UNDER
    assert by["g × h", "a × x"].representation is Representation.OVER
    assert by["g × h", "a × y"].reference_share == pytest.approx(0.25)
    off = check_representativeness(
        df, ref, sensitive_features=["g", "h"], policy=RepresentativenessPolicy(intersections=False)
    )
    assert off.passed and {g.attribute for g in off.groups} == {"g", "h"}


def test_the_policy_judges_the_point_or_the_interval_bound():
    on_interval = RepresentativenessPolicy(judge_on="interval")
    # b's share is 0.45 of an expected 0.5: ratio 0.9 (within), but its interval reaches below 0.8.
    df = pd.DataFrame({"g": ["a"] * 110 + ["b"] * 90})
    assert check_representativeness(df, REF, sensitive_features=["g"]).passed
    judged = check_representativeness(df, REF, sensitive_features=["g"], policy=on_interval)
    b = next(g for g in judged.groups if g.group == "b")
    assert b.ratio_low < 0.8 < b.ratio < b.ratio_high < 1.25
    # On the interval, an interval reaching across a limit cannot say which side the group is on.
    # It is not shown to be within tolerance: the gate fails as on a violation, without calling it one.
    assert b.representation is Representation.INCONCLUSIVE and judged.status is GateStatus.FAILED
    finding = next(f for f in judged.verdict.findings if f.subject == "g=b")
    assert finding.rule == "representativeness.min_ratio" and "inconclusive, more data needed" in finding.message
    assert "under-represented" not in finding.message
    recorded = RepresentativenessPolicy(judge_on="interval", enforce=False, exception_reason="tests")
    assert check_representativeness(df, REF, sensitive_features=["g"], policy=recorded).status is GateStatus.WARNING
    # With 100x the rows the interval is narrow and lies within the limits.
    assert check_representativeness(pd.concat([df] * 100), REF, sensitive_features=["g"], policy=on_interval).passed
    # An interval crossing both limits says nothing: too small to judge (fails closed, never waived).
    tiny = pd.DataFrame({"g": ["a"] * 11 + ["b"] * 9})
    wide = check_representativeness(
        tiny, REF, sensitive_features=["g"], policy=RepresentativenessPolicy(judge_on="interval", min_group_size=5)
    )
    b = next(g for g in wide.groups if g.group == "b")
    assert b.ratio_low < 0.8 and b.ratio_high > 1.25
    assert b.representation is Representation.TOO_SMALL and wide.status is GateStatus.NOT_JUDGED
    finding = next(f for f in wide.verdict.findings if f.subject == "g=b")
    assert "reaches across both limits: too small to judge" in finding.message
    assert finding.rule == "representativeness.judge_on" and finding.observed == b.ratio and finding.interval


def test_a_verdict_never_says_more_than_its_interval():
    # The case: a ratio just under 0.8 whose interval reaches past 1, judged on the point.
    ref = ReferencePopulation("t", 2000, "", {"g": {"a": 0.5, "b": 0.5}})
    report = check_representativeness(pd.DataFrame({"g": ["a"] * 122 + ["b"] * 78}), ref, sensitive_features=["g"])
    b = next(g for g in report.groups if g.group == "b")
    assert b.ratio < 0.8 <= b.ratio_high and b.representation is Representation.INCONCLUSIVE
    assert report.status is GateStatus.FAILED and "inconclusive, more data needed" in report.reason
    # Far below with a tight interval: under-represented, as its whole interval says.
    clear = check_representativeness(pd.DataFrame({"g": ["a"] * 7000 + ["b"] * 3000}), ref, sensitive_features=["g"])
    b = next(g for g in clear.groups if g.group == "b")
    assert b.ratio_high < 0.8 and b.representation is Representation.UNDER and clear.status is GateStatus.FAILED


def test_not_judged_is_never_waived_by_a_policy_that_does_not_enforce():
    df = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 45 + ["c"] * 40})
    report = check_representativeness(df, REF, sensitive_features=["g"], policy=RepresentativenessPolicy(enforce=False))
    assert report.status is GateStatus.NOT_JUDGED and not report.passed


def test_nan_or_infinite_reference_shares_are_refused():
    for bad in (float("nan"), float("inf")):
        with pytest.raises(InvalidParameterError, match="finite number"):
            ReferencePopulation.from_dict({"source": "s", "year": 2000, "attributes": {"g": {"shares": {"a": bad}}}})


def test_absent_group_and_unknown_attribute_fail():
    report = check_representativeness(pd.DataFrame({"g": ["a"] * 100}), REF, sensitive_features=["g"])
    absent = next(f for f in report.verdict.problems if f.subject == "g=b")
    assert not report.passed and absent.status is GateStatus.FAILED and "absent from the data" in absent.message
    assert report.groups[1].representation is Representation.ABSENT and report.groups[1].count == 0
    df = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 50, "h": ["x"] * 100})
    assert check_representativeness(df, REF, sensitive_features=["g", "h"]).status is GateStatus.NOT_JUDGED


def test_not_enforced_passes_with_a_recorded_warning(adult):
    report = check_representativeness(
        adult,
        ReferencePopulation.default(),
        sensitive_features=["sex"],
        policy=RepresentativenessPolicy(enforce=False),
    )
    assert report.passed and report.status is GateStatus.WARNING
    assert report.reason.startswith("violations recorded as warnings") and report.verdict.problems
    assert all(f.status is GateStatus.WARNING for f in report.verdict.problems)


def test_mapping_merges_source_categories():
    race = ReferencePopulation.default().shares["race"]
    assert race["Other"] == pytest.approx((0.055 + 0.024) / 0.999, abs=1e-6)
    assert sum(race.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"year": 2000, "attributes": {}}, "lacks 'source'"),
        ({"source": "s", "year": 2000, "attributes": {"g": {"shares": {"a": 0.3}}}}, "add up to 0.300"),
        (
            {"source": "s", "year": 2000, "attributes": {"g": {"shares": {"a": 1.0}, "mapping": {"x": ["z"]}}}},
            "not among the source's categories",
        ),
        (
            {"source": "s", "year": 2000, "attributes": {"g": {"shares": {"a": -1, "b": 2}}}},
            "must be a finite number >= 0",
        ),
        ({"source": "s", "year": "2000s", "attributes": {"g": {"shares": {"a": 1.0}}}}, "'year' must be a whole year"),
        (
            {"source": "s", "year": 2000, "attributes": {"g": {"shares": {"a": 1.0}, "mapping": {"x": [3]}}}},
            "must name source categories",
        ),
    ],
)
def test_reference_file_is_validated(data, fragment):
    with pytest.raises(InvalidParameterError) as info:
        ReferencePopulation.from_dict(data)
    assert fragment in str(info.value)


def test_wilson_interval_known_value():
    low, high = wilson_interval(50, 100, 0.95)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    assert wilson_interval(0, 10, 0.95)[0] == 0.0


def test_report_renders(adult):
    report = check_representativeness(adult.head(500), ReferencePopulation.default(), sensitive_features=["sex"])
    assert "| FAILED | under-represented | sex | Female |" in report.to_markdown()
    html = report.to_html()
    assert '<div class="verdict status-failed"' in html and "<svg" in html
    data = report.to_dict()
    assert data["kind"] == "representativeness_report" and data["status"] == "failed" and data["findings"]


def test_a_ratio_at_exactly_the_limit_passes_and_an_absence_nobody_could_expect_is_too_small():
    ref = ReferencePopulation.from_dict(
        {"source": "t", "year": 2020, "attributes": {"g": {"shares": {"a": 0.6, "b": 0.3, "c": 0.1}}}}
    )
    df = pd.DataFrame({"g": ["a"] * 620 + ["b"] * 300 + ["c"] * 80})  # c: 0.08 / 0.1 = 0.8 exactly
    c = next(g for g in check_representativeness(df, ref, sensitive_features=["g"]).groups if g.group == "c")
    assert c.representation is Representation.WITHIN
    rare = ReferencePopulation.from_dict(
        {"source": "t", "year": 2020, "attributes": {"g": {"shares": {"a": 0.98, "b": 0.01, "c": 0.01}}}}
    )
    few = pd.DataFrame({"g": ["a"] * 980 + ["b"] * 20})  # c expected on 10 rows: its absence proves little
    c = next(g for g in check_representativeness(few, rare, sensitive_features=["g"]).groups if g.group == "c")
    assert c.representation is Representation.TOO_SMALL and c.status is GateStatus.NOT_JUDGED
    many = pd.concat([few] * 10)  # expected on 100 rows: absent
    c = next(g for g in check_representativeness(many, rare, sensitive_features=["g"]).groups if g.group == "c")
    assert c.representation is Representation.ABSENT and c.status is GateStatus.FAILED
