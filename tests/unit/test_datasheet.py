"""Proxies, the collection plan, per-group data quality and the datasheet, each statistic checked
against a reference implementation or a hand-computed value."""

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LinearRegression
from sklearn.metrics import normalized_mutual_info_score

from kfp_rai.core.bundled import data_path
from kfp_rai.core.verdict import GateStatus
from kfp_rai.discovery import (
    CollectionPlan,
    ReferencePopulation,
    check_plan,
    check_representativeness,
    correlation_ratio,
    cramers_v,
    find_proxies,
    group_quality,
    quality_notes,
    write_datasheet,
)
from kfp_rai.errors import InvalidParameterError

PLAN = data_path("adult", "collection_plan.yaml")


def _plan(**changes):
    data = yaml.safe_load(PLAN.read_text())
    data.update(changes)
    return data


# ------------------------------------------------------------------------------------------ proxies


def test_cramers_v_of_a_hand_computed_table():
    # [[30, 10], [10, 30]]: chi-square = 80 (30*30 - 10*10)^2 / (40^4) = 20, V = sqrt(20 / 80) = 0.5;
    # bias-corrected (Bergsma 2013): phi2 - 1/79 over min(r, k) - 1 - 1/79.
    feature = np.array([0] * 30 + [0] * 10 + [1] * 10 + [1] * 30)
    attribute = np.array([0] * 30 + [1] * 10 + [0] * 10 + [1] * 30)
    assert cramers_v(feature, attribute, corrected=False) == pytest.approx(0.5)
    assert cramers_v(feature, attribute) == pytest.approx(np.sqrt((0.25 - 1 / 79) / (1 - 1 / 79)))
    assert cramers_v(np.zeros(10, dtype=int), attribute[:10]) == 0.0


def test_a_many_valued_column_is_not_a_proxy_by_chance_but_a_number_missing_for_one_group_is():
    rng = np.random.default_rng(0)
    sex = rng.choice(["F", "M"], 500)
    df = pd.DataFrame(
        {
            "sex": sex,
            "code": rng.integers(0, 100, 500).astype(str),  # independent of sex, 100 levels
            "pregnancies": np.where(sex == "M", np.nan, rng.integers(0, 5, 500)),  # missing for every man
        }
    )
    found = {
        a.feature: a
        for a in find_proxies(df, sensitive_features=["sex"], features=["code", "pregnancies"], threshold=0.3)
    }
    assert found["code"].strength < 0.1 and not found["code"].proxy  # uncorrected it would be 0.44
    assert found["pregnancies"].proxy and found["pregnancies"].measure == "Cramér's V of being missing"


def test_correlation_ratio_is_the_square_root_of_the_anova_r_squared():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 4, 2000)
    values = rng.normal(size=2000) + 0.7 * groups
    one_hot = np.eye(4)[groups]
    r2 = LinearRegression().fit(one_hot, values).score(one_hot, values)
    assert correlation_ratio(values, groups) == pytest.approx(np.sqrt(r2), abs=1e-12)
    assert correlation_ratio(np.ones(10), groups[:10]) == 0.0


def test_a_planted_proxy_is_found_and_an_independent_feature_is_not():
    rng = np.random.default_rng(0)
    n = 3000
    sex = rng.choice(["F", "M"], n)
    df = pd.DataFrame(
        {
            "sex": sex,
            "planted": np.where(rng.random(n) < 0.9, sex, rng.choice(["F", "M"], n)),  # 90% copy of sex
            "noise": rng.choice(list("abcde"), n),
            "income": rng.normal(size=n) + (sex == "M") * 1.5,  # a numeric proxy
            "age": rng.normal(size=n),
        }
    )
    df.loc[::10, "age"] = np.nan
    found = find_proxies(df, sensitive_features=["sex"], features=["planted", "noise", "income", "age"], threshold=0.3)
    by = {a.feature: a for a in found}
    assert [a.feature for a in found][:2] == ["planted", "income"]
    assert by["planted"].proxy and by["income"].proxy and not by["noise"].proxy and not by["age"].proxy
    assert by["planted"].nmi == pytest.approx(normalized_mutual_info_score(df["sex"], df["planted"]))
    assert by["income"].measure == "correlation ratio" and by["income"].nmi is None
    assert by["age"].rows == n - len(df.loc[::10])  # missing numbers are left out
    assert by["noise"].strength < 0.1


def test_adults_proxies_for_sex(adult):
    features = [c for c in adult.columns if c not in ("sex", "race", "income")]
    found = find_proxies(adult, sensitive_features=["sex", "race"], features=features, threshold=0.3)
    for_sex = [a.feature for a in found if a.attribute == "sex" and a.proxy]
    assert for_sex[:2] == ["relationship", "marital-status"]
    assert next(a for a in found if a.feature == "relationship").strength == pytest.approx(0.649, abs=1e-3)


# ---------------------------------------------------------------------------------- collection plan


def test_the_bundled_plan_matches_adult(adult):
    verdict = check_plan(adult, CollectionPlan.load(str(PLAN)), sensitive_features=["sex", "race"])
    assert verdict.status is GateStatus.PASSED, verdict.reason


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"purpose": ""}, "at purpose: '' should be non-empty"),
        ({"licence": None}, "at licence: None is not of type 'string'"),
        ({"collection": {"start": "1994-01-01", "end": "1993-01-01", "method": "survey"}}, "is before"),
        ({"collection": {"start": "1994-13-01", "end": "1994-12-31", "method": "survey"}}, "collection/start"),
        ({"owners": []}, "at owners: [] should be non-empty"),
        ({"expected_populations": {"age": {"groups": ["x"], "source": "s"}}}, "not among its sensitive_attributes"),
        ({"surprise": 1}, "Additional properties are not allowed ('surprise'"),
    ],
)
def test_a_plan_that_breaks_the_schema_is_one_clear_error(change, fragment):
    with pytest.raises(InvalidParameterError) as info:
        CollectionPlan.from_dict(_plan(**change))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_the_data_is_checked_against_the_plan(adult):
    plan = CollectionPlan.from_dict(_plan(expected_columns=[*_plan()["expected_columns"], "zip"]))
    df = adult[adult["race"] != "Other"].assign(race=lambda d: d["race"].replace({"Black": "Blk"}))
    verdict = check_plan(df, plan, sensitive_features=["sex"])
    messages = [f.message for f in verdict.problems]
    assert verdict.status is GateStatus.FAILED
    assert any("lacks columns the plan expects: ['zip']" in m for m in messages)
    assert any("race: the plan names it sensitive, but it is not judged" in m for m in messages)
    assert any("expects are absent from the data: ['Black', 'Other']" in m for m in messages)
    assert any("does not expect: ['Blk']" in m for m in messages)


def test_rows_outside_the_collection_period_fail_and_unreadable_dates_are_not_judged(adult):
    collection = {"start": "1994-01-01", "end": "1994-12-31", "method": "survey", "date_column": "day"}
    plan = CollectionPlan.from_dict(_plan(collection=collection))
    days = pd.Series(pd.date_range("1994-01-01", periods=len(adult), freq="min").date)
    inside = check_plan(adult.assign(day=days.astype(str)), plan, sensitive_features=["sex", "race"])
    assert inside.passed, inside.reason
    late = days.copy()
    late.iloc[:3] = pd.Timestamp("1995-02-01").date()
    outside = check_plan(adult.assign(day=late.astype(str)), plan, sensitive_features=["sex", "race"])
    assert outside.status is GateStatus.FAILED and "3 rows fall outside" in outside.reason
    garbled = check_plan(adult.assign(day="soon"), plan, sensitive_features=["sex", "race"])
    assert garbled.status is GateStatus.NOT_JUDGED


def test_no_plan_is_not_judged_and_no_policy_waives_it(adult):
    verdict = check_plan(adult, None, sensitive_features=["sex"], enforce=False)
    assert verdict.status is GateStatus.NOT_JUDGED and "no data collection plan" in verdict.reason


# ------------------------------------------------------------------------------ quality, datasheet


def test_group_quality_by_hand():
    df = pd.DataFrame(
        {
            "g": ["a"] * 60 + ["b"] * 40,
            "y": ["yes"] * 30 + ["no"] * 30 + ["yes"] * 4 + ["no"] * 36,
            "x": [1.0] * 60 + [np.nan] * 20 + [1.0] * 20,
        }
    )
    quality = {q.group: q for q in group_quality(df, target="y", positive_label="yes", sensitive_features=["g"])}
    assert quality["a"].rows == 60 and quality["a"].base_rate == 0.5 and quality["b"].base_rate == 0.1
    assert quality["a"].missing == {"x": 0.0} and quality["b"].missing == {"x": 0.5}
    assert quality["b"].base_rate_low < 0.1 < quality["b"].base_rate_high
    notes = quality_notes(list(quality.values()), overall_rate=0.34, overall_missing={"x": 0.2})
    assert "g=b: label base rate 10.0%" in notes[1] and "x: missing for 50.0% of g=b vs 20.0% overall" in notes


def test_fair_data_leaves_nothing_to_note():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": rng.choice(["a", "b"], 4000), "y": rng.choice(["yes", "no"], 4000)})
    quality = group_quality(df, target="y", positive_label="yes", sensitive_features=["g"])
    assert quality_notes(quality, float((df["y"] == "yes").mean()), {}) == []


def test_adults_datasheet(adult):
    rep = check_representativeness(adult, ReferencePopulation.default(), sensitive_features=["sex", "race"])
    sheet = write_datasheet(
        adult,
        target="income",
        positive_label=">50K",
        sensitive_features=["sex", "race"],
        features=[c for c in adult.columns if c not in ("sex", "race", "income")],
        plan=CollectionPlan.load(str(PLAN)),
        representativeness=rep.to_dict(),
        proxy_threshold=0.3,
    )
    # The discovery verdict is representativeness and the plan together: both kept, neither hidden.
    assert sheet.status is GateStatus.FAILED and sheet.plan_verdict.passed
    assert len(sheet.verdict.findings) == len(rep.verdict.findings) + len(sheet.plan_verdict.findings)
    assert {"relationship", "marital-status"} <= set(sheet.proxies)
    assert any(n.startswith("sex=Female: label base rate 10.9%") for n in sheet.notes)
    md = sheet.to_markdown()
    for title in (
        "Motivation",
        "Composition",
        "Collection process",
        "Preprocessing",
        "Uses",
        "Distribution",
        "Maintenance",
    ):
        assert f"## {title}" in md
    assert "CC BY 4.0" in md and "under-represented" in md and md.count("<svg") == 0
    assert sheet.to_html().count("<svg") >= 6


def test_rows_without_a_readable_date_leave_the_period_unchecked_and_zones_keep_their_day(adult):
    collection = {"start": "2020-01-01", "end": "2020-12-31", "method": "survey", "date_column": "day"}
    plan = CollectionPlan.from_dict(_plan(collection=collection))
    df = adult.head(4)

    def judged(values):
        verdict = check_plan(df.assign(day=values), plan, sensitive_features=["sex", "race"])
        return next(f for f in verdict.findings if f.subject == "day")

    assert judged(["2020-05-01", None, None, None]).status is GateStatus.NOT_JUDGED
    assert "3 of 4 rows have no readable date" in judged(["2020-05-01", None, None, None]).message
    assert judged([20200501] * 4).status is GateStatus.NOT_JUDGED  # numbers are not dates
    # 00:30 at +01:00 is still 1 January where it happened; naive and aware values may mix.
    mixed = ["2020-01-01 00:30+01:00", "2020-05-01", "2020-06-01 10:00-05:00", "2020-12-31"]
    assert judged(mixed).status is GateStatus.PASSED


def test_a_plan_with_odd_yaml_is_one_clear_error():
    from kfp_rai.core.files import load_yaml

    unquoted = CollectionPlan.from_yaml(PLAN.read_text().replace('"1994-01-01"', "1994-01-01"))
    assert unquoted.start.isoformat() == "1994-01-01"
    with pytest.raises(InvalidParameterError, match="not among its sensitive_attributes"):
        CollectionPlan.from_dict(
            _plan(expected_populations={1: {"groups": ["x"], "source": "s"}, "zz": {"groups": ["y"], "source": "s"}})
        )
    with pytest.raises(InvalidParameterError, match="a key is a name"):
        load_yaml("? [a, b]\n: 1\n", "data collection plan")
