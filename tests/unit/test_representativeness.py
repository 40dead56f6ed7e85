import pandas as pd
import pytest

from kfp_rai.discovery import ReferencePopulation, check_representativeness
from kfp_rai.discovery._representativeness import wilson_interval
from kfp_rai.errors import InvalidParameterError
from kfp_rai.policy import RepresentativenessPolicy

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
    assert female.ratio == pytest.approx(0.65, abs=0.01) and not female.passed
    assert female.ci_low < female.share < female.ci_high
    assert {v.split(":")[0] for v in report.violations} == {"sex=Female", "race=Black", "race=Other"}
    assert "sex=Female" in report.reason


def test_balanced_data_passes():
    df = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 45})
    report = check_representativeness(df, REF, sensitive_features=["g"])
    assert report.passed, report.reason


def test_fails_closed_on_small_and_unmapped_groups():
    df = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 45 + ["c"] * 5})
    report = check_representativeness(df, REF, sensitive_features=["g"], policy=RepresentativenessPolicy())
    assert not report.passed
    problems = {g.group: g.problem for g in report.groups}
    assert "not in the reference" in problems["c"] and "5 rows < minimum 30" in problems["c"]


def test_absent_group_and_unknown_attribute_fail():
    report = check_representativeness(pd.DataFrame({"g": ["a"] * 100}), REF, sensitive_features=["g"])
    assert not report.passed and any("g=b" in v for v in report.violations)
    df = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 50, "h": ["x"] * 100})
    assert not check_representativeness(df, REF, sensitive_features=["g", "h"]).passed


def test_not_enforced_passes_with_a_recorded_warning(adult):
    report = check_representativeness(
        adult,
        ReferencePopulation.default(),
        sensitive_features=["sex"],
        policy=RepresentativenessPolicy(enforce=False),
    )
    assert report.passed and report.reason.startswith("warning") and report.violations


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
        ({"source": "s", "year": 2000, "attributes": {"g": {"shares": {"a": -1, "b": 2}}}}, "must be a number >= 0"),
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
    assert "| sex | Female |" in report.to_markdown()
    assert "<table>" in report.to_html() and "NOT PASSED" in report.to_html()
    assert report.to_dict()["kind"] == "representativeness_report"
