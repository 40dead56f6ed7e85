"""A reviewer's human-computed metrics, compared with ours: agreement, disagreement, other data,
bad files. The reviewer's figures here come from reference implementations (scikit-learn,
fairlearn, pandas), as a person would compute them."""

import hashlib

import pytest
from fairlearn.metrics import demographic_parity_ratio, equalized_odds_difference
from sklearn.metrics import accuracy_score

from kfp_rai.core.verdict import GateStatus
from kfp_rai.errors import InvalidParameterError
from kfp_rai.policy import ValidationPolicy
from kfp_rai.production import build_model_card
from kfp_rai.validation import ReviewerFile, compare_with_reviewer, evaluate_model

SENSITIVE = ["sex", "race"]
SHA = hashlib.sha256(b"the test split").hexdigest()


@pytest.fixture(scope="module")
def judged(adult_split, adult_model):
    _, test = adult_split
    model, summary = adult_model
    # Every group's rates judged (min_positives/negatives 1): the reviewer's fairlearn figures are
    # over all groups, as ours then are (test_validation covers the small-count rule).
    policy = ValidationPolicy(
        bootstrap_samples=0, enforce=False, gate_intersections=False, min_positives=1, min_negatives=1,
        exception_reason="tests",
    )  # fmt: skip
    report = evaluate_model(
        model, test, features=summary.features, target="income", positive_label=">50K",
        sensitive_features=SENSITIVE, policy=policy,
    )  # fmt: skip
    y = (test["income"] == ">50K").astype(int)
    pred = (model.predict_proba(test[list(summary.features)])[:, 1] >= 0.5).astype(int)
    return report, test, y, pred


def _file(*metrics, sha=SHA):
    return ReviewerFile.from_dict(
        {
            "reviewer": "Jane Doe",
            "role": "validator",
            "date": "2026-11-20",
            "data_sha256": sha,
            "metrics": list(metrics),
        }
    )


def test_figures_computed_by_hand_agree_and_the_report_names_the_reviewer(judged):
    report, test, y, pred = judged
    women = (test["sex"] == "Female").to_numpy()
    reviewer = _file(
        {"metric": "accuracy", "value": round(accuracy_score(y, pred), 4)},
        {"metric": "selection_rate", "attribute": "sex", "group": "Female", "value": round(pred[women].mean(), 4)},
        {"metric": "demographic_parity_ratio", "attribute": "sex",
         "value": round(demographic_parity_ratio(y, pred, sensitive_features=test["sex"]), 4)},
        {"metric": "equalized_odds_difference", "attribute": "race",
         "value": round(equalized_odds_difference(y, pred, sensitive_features=test["race"]), 4)},
    )  # fmt: skip
    checked = compare_with_reviewer(report, reviewer, data_sha256=SHA, tolerance=0.005)
    assert checked.reviewer["status"] == "passed" and len(checked.reviewer["comparisons"]) == 4
    ours = [f for f in checked.verdict.findings if f.rule.startswith("validation.reviewer")]
    assert len(ours) == 5 and all(f.status is GateStatus.PASSED for f in ours)
    # The human check joins the verdict; the model's own findings stay as they were.
    assert checked.status is report.status
    assert "Jane Doe (validator) computed 4 figures on 2026-11-20" in checked.to_markdown()


def test_a_disagreement_fails_even_when_the_policy_records_violations_only(judged):
    report, *_ = judged
    assert report.status is GateStatus.WARNING  # the unfair model, recorded only under this policy
    wrong = _file({"metric": "accuracy", "value": report.overall["accuracy"] + 0.02})
    checked = compare_with_reviewer(report, wrong, data_sha256=SHA, tolerance=0.005)
    assert checked.status is GateStatus.FAILED and not checked.passed
    assert "they disagree by 0.0200 (> 0.005)" in checked.reason
    card = build_model_card(
        model_name="m", model_metadata={"training_verdict": {"status": "passed", "reason": "ok", "findings": []}},
        representativeness={"status": "passed", "reason": "ok", "findings": []},
        validation=checked.to_dict(), explanation={"status": "passed", "reason": "ok", "findings": []},
        intended_use="tests",
    )  # fmt: skip
    assert not card.eligible and "Jane Doe" in card.to_markdown()


def test_figures_from_other_data_or_for_an_unknown_group_do_not_confirm_anything(judged):
    report, *_ = judged
    elsewhere = _file({"metric": "accuracy", "value": report.overall["accuracy"]}, sha="0" * 64)
    checked = compare_with_reviewer(report, elsewhere, data_sha256=SHA, tolerance=0.005)
    assert checked.status is GateStatus.FAILED and "cannot confirm ours" in checked.reason
    unknown = _file({"metric": "selection_rate", "attribute": "sex", "group": "Other", "value": 0.1})
    checked = compare_with_reviewer(report, unknown, data_sha256=SHA, tolerance=0.005)
    assert checked.status is GateStatus.NOT_JUDGED and "we have no such figure" in checked.reason


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"reviewer": ""}, "'reviewer' must be given as text"),
        ({"date": "yesterday"}, "'date' must be YYYY-MM-DD"),
        ({"data_sha256": "abc"}, "64 hex digits"),
        ({"metrics": []}, "at least one metric"),
        ({"metrics": [{"metric": "accuracy", "value": "high"}]}, "'value' must be a finite number"),
        ({"metrics": [{"metric": "f1", "value": 0.5}]}, "'f1' is not a metric computed overall"),
        ({"metrics": [{"metric": "accuracy", "attribute": "sex", "value": 0.5}]}, "not a metric computed between"),
        ({"metrics": [{"metric": "accuracy", "group": "Female", "value": 0.5}]}, "a 'group' needs its 'attribute'"),
        ({"signature": "x"}, "unknown key 'signature'"),
        ({1: "x", None: "y"}, "unknown key"),
    ],
)
def test_a_bad_reviewer_file_is_one_clear_error(change, fragment):
    data = {
        "reviewer": "J",
        "role": "r",
        "date": "2026-11-20",
        "data_sha256": SHA,
        "metrics": [{"metric": "accuracy", "value": 0.8}],
    }
    with pytest.raises(InvalidParameterError) as info:
        ReviewerFile.from_dict({**data, **change})
    assert fragment in str(info.value)


def test_the_card_lists_every_loosened_setting_even_without_a_written_reason(judged):
    report, *_ = judged
    loose = {"policy": {**report.policy, "min_demographic_parity_ratio": 0.0, "reviewer_tolerance": 1.0}}
    card = build_model_card(
        model_name="m", model_metadata={"training_verdict": {"status": "passed", "reason": "ok", "findings": []}},
        representativeness={"status": "passed", "reason": "ok", "findings": []},
        validation={**report.to_dict(), **loose}, explanation={"status": "passed", "reason": "ok", "findings": []},
        intended_use="tests",
    )  # fmt: skip
    changed = card.changed_settings()
    assert "validation.min_demographic_parity_ratio: 0.0 (default 0.8)" in changed
    assert "validation.reviewer_tolerance: 1.0 (default 0.005)" in changed
    assert "validation.min_demographic_parity_ratio: 0.0 (default 0.8)" in card.to_markdown()
