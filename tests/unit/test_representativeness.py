import pandas as pd
import pytest

from kfp_rai.core.verdict import GateStatus
from kfp_rai.discovery import ReferencePopulation, check_representativeness
from kfp_rai.errors import InvalidParameterError
from kfp_rai.policy import RepresentativenessPolicy
from kfp_rai.stats.intervals import wilson_interval

REF = ReferencePopulation.from_dict(
    {"source": "test", "year": 2020, "attributes": {"g": {"shares": {"a": 0.5, "b": 0.5}}}}
)


def test_adult_fails_on_women_and_small_race_groups(adult):
    report = check_representativeness(adult, ReferencePopulation.default(), sensitive_features=["sex", "race"])
    assert not report.passed
    female = next(g for g in report.groups if g.group == "Female")
    assert female.count == 10771
    assert female.share == pytest.approx(0.331, abs=0.001)
    assert female.reference_share == pytest.approx(0.509, abs=0.001)
    assert female.ratio == pytest.approx(0.65, abs=0.01) and female.status is GateStatus.FAILED
    assert female.ci_low < female.share < female.ci_high
    assert report.status is GateStatus.FAILED
    assert {f.subject for f in report.verdict.problems} == {"sex=Female", "race=Black", "race=Other"}
    ratio = next(f for f in report.verdict.findings if f.subject == "sex=Female" and f.rule.endswith("min_ratio"))
    assert ratio.limit == 0.8 and ratio.interval[0] < ratio.observed < ratio.interval[1]
    # The reason names every problem in full: nothing cut with "...".
    assert all(f.message in report.reason for f in report.verdict.problems) and "..." not in report.reason


def test_balanced_data_passes():
    df = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 45})
    report = check_representativeness(df, REF, sensitive_features=["g"])
    assert report.passed, report.reason


def test_fails_closed_on_small_and_unmapped_groups():
    df = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 45 + ["c"] * 5})
    report = check_representativeness(df, REF, sensitive_features=["g"], policy=RepresentativenessPolicy())
    assert not report.passed
    c = {f.rule: f for f in report.verdict.findings if f.subject == "g=c"}
    assert c["representativeness.reference"].status is GateStatus.NOT_JUDGED
    assert "not in the reference" in c["representativeness.reference"].message
    small = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 20})
    sized = next(
        f
        for f in check_representativeness(small, REF, sensitive_features=["g"]).verdict.findings
        if f.subject == "g=b" and f.rule.endswith("min_group_size")
    )
    assert sized.status is GateStatus.FAILED and "20 rows < minimum 30" in sized.message


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
    assert "| FAILED | sex | Female |" in report.to_markdown()
    html = report.to_html()
    assert '<div class="verdict status-failed"' in html and "<svg" in html
    data = report.to_dict()
    assert data["kind"] == "representativeness_report" and data["status"] == "failed" and data["findings"]
