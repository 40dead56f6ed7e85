"""Mitigation: each stored model predicts exactly as the fairlearn object it was built from, a
mitigation narrows the gap it targets on data built to be unfair, and validation shows the
trade-off against the unmitigated model on the same rows."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference
from fairlearn.postprocessing import ThresholdOptimizer
from fairlearn.reductions import DemographicParity, ExponentiatedGradient
from sklearn.base import clone

from kfp_rai.core.files import sha256_bytes
from kfp_rai.core.groups import intersection_labels
from kfp_rai.core.model_dir import TRUSTED_NODES, load_model_bytes, model_bytes, model_types
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import TrainingPolicy, ValidationPolicy
from kfp_rai.training import train_model
from kfp_rai.training._mitigation import from_exponentiated_gradient, from_threshold_optimizer
from kfp_rai.validation import evaluate_model

FAST = {"max_iter": 30}


def _unfair(n=6000, seed=0):
    """Women are labelled positive far less often; the model never sees sex, but tenure is a planted
    proxy of it (men have 10 more years), so the unmitigated model selects men far more often."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    skill = rng.normal(size=n)
    y = (skill + (sex == "M") * 1.2 + rng.normal(scale=0.5, size=n)) > 0.8
    tenure = rng.normal(10, 3, n) + 10 * (sex == "M")
    return pd.DataFrame({"skill": skill, "tenure": tenure, "sex": sex, "y": np.where(y, "yes", "no")})


@pytest.fixture(scope="module")
def unfair():
    return _unfair(), _unfair(3000, seed=1)


def _dp(model, df, features):
    pred = (model.predict_proba(df[list(features)])[:, 1] >= 0.5).astype(int)
    return demographic_parity_difference(df["y"] == "yes", pred, sensitive_features=df["sex"])


def test_the_stored_threshold_optimizer_predicts_exactly_as_fairlearns(unfair):
    train, test = unfair
    base, summary = train_model(
        train, target="y", positive_label="yes", sensitive_features=["sex"], policy=TrainingPolicy(**FAST)
    )
    y = (train["y"] == "yes").to_numpy().astype(int)
    for constraint in ("demographic_parity", "equalized_odds"):
        optimizer = ThresholdOptimizer(
            estimator=base, constraints=constraint, prefit=True, predict_method="predict_proba"
        )
        optimizer.fit(
            train[list(summary.features)], y, sensitive_features=intersection_labels(train, ["sex"]).to_numpy()
        )
        ours = from_threshold_optimizer(optimizer, list(summary.features), ["sex"], constraint)
        theirs = optimizer._pmf_predict(
            test[list(summary.features)], sensitive_features=intersection_labels(test, ["sex"]).to_numpy()
        )
        assert np.allclose(ours.predict_proba(test[ours.features]), theirs, atol=1e-12, rtol=0)


def test_the_stored_exponentiated_gradient_predicts_exactly_as_fairlearns(unfair):
    train, test = unfair
    base, summary = train_model(
        train, target="y", positive_label="yes", sensitive_features=["sex"], policy=TrainingPolicy(**FAST)
    )
    features = list(summary.features)
    preprocess = clone(base[0]).fit(train[features])
    reduction = ExponentiatedGradient(clone(base[-1]), constraints=DemographicParity(), max_iter=5)
    reduction.fit(
        preprocess.transform(train[features]), (train["y"] == "yes").astype(int), sensitive_features=train["sex"]
    )
    ours = from_exponentiated_gradient(reduction, preprocess, "demographic_parity", features, base)
    theirs = reduction._pmf_predict(preprocess.transform(test[features]))
    assert np.allclose(ours.predict_proba(test), theirs, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("method", "needs_sensitive"),
    [("correlation_remover", True), ("exponentiated_gradient", False), ("threshold_optimizer", True)],
)
def test_each_mitigation_narrows_the_gap_is_stored_with_the_trust_list_and_shows_its_trade_off(
    unfair, method, needs_sensitive
):
    train, test = unfair
    policy = TrainingPolicy(mitigation=method, mitigation_max_iter=5, **FAST)
    model, summary = train_model(train, target="y", positive_label="yes", sensitive_features=["sex"], policy=policy)
    assert summary.mitigation == method and ("sex" in summary.features) is needs_sensitive
    before = _dp(model.unmitigated, test, model.unmitigated_features)
    after = _dp(model, test, summary.features)
    assert before > 0.3 and after < before - 0.1, (before, after)
    # Stored with skops under the exact trust list, loaded back, same predictions.
    data = model_bytes(model)
    assert model_types(data) <= TRUSTED_NODES
    loaded = load_model_bytes(data, expected_sha256=sha256_bytes(data))
    assert np.array_equal(loaded.predict_proba(test), model.predict_proba(test))
    report = evaluate_model(
        model, test, features=summary.features, target="y", positive_label="yes", sensitive_features=["sex"],
        policy=ValidationPolicy(bootstrap_samples=0),
    )  # fmt: skip
    unmitigated, mitigated = report.tradeoff["rows"]
    assert unmitigated["model"] == "unmitigated" and mitigated["model"].startswith(method)
    assert unmitigated["sex demographic_parity_difference"] == pytest.approx(before)
    assert mitigated["sex demographic_parity_difference"] == pytest.approx(after)
    assert "Mitigation trade-off (same test data)" in report.to_markdown()


def test_a_group_with_one_label_cannot_be_thresholded_and_says_so(unfair):
    train, _ = unfair
    one = train.assign(y=np.where(train["sex"] == "F", "no", train["y"]))
    policy = TrainingPolicy(mitigation="threshold_optimizer", **FAST)
    with pytest.raises(DataValidationError, match=r"\['F'\] hold one"):
        train_model(one, target="y", positive_label="yes", sensitive_features=["sex"], policy=policy)


def test_correlation_remover_projects_out_exactly_the_sensitive_columns():
    from kfp_rai.training._mitigation import _source_column

    inputs = ["sex_flag", "sex", "age"]
    assert _source_column("cat__sex_Female", inputs) == "sex"
    assert _source_column("remainder__sex_flag", inputs) == "sex_flag"
    assert _source_column("cat__sex_flag_yes", inputs) == "sex_flag"
    assert _source_column("remainder__age", inputs) == "age"
