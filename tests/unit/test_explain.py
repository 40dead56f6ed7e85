from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from kfp_rai.core.verdict import GateStatus
from kfp_rai.discovery import known_proxies
from kfp_rai.errors import DataValidationError
from kfp_rai.explainability import explain_model
from kfp_rai.explainability._shap import _original_feature
from kfp_rai.policy import ExplainabilityPolicy, ProxyPolicy, TrainingPolicy
from kfp_rai.training import train_model

SENSITIVE = ["sex", "race"]


def test_tree_attributions_map_back_to_input_features(adult_split, adult_model):
    _, test = adult_split
    model, summary = adult_model
    report = explain_model(
        model,
        test,
        features=summary.features,
        sensitive_features=SENSITIVE,
        policy=ExplainabilityPolicy(sample_size=200, max_proxy_share=1.0),
        proxies={},
    )
    assert report.method.startswith("SHAP TreeExplainer")
    assert {f.feature for f in report.importance} == set(summary.features)
    assert sum(f.share for f in report.importance) == pytest.approx(1.0)
    # marital status and age dominate Adult models; sensitive features are not inputs by default
    assert {f.feature for f in report.importance[:3]} >= {"marital-status"}
    assert report.sensitive_share == 0.0 and report.status is GateStatus.PASSED
    assert set(report.by_group["sex"]) == {"Female", "Male"}
    html = report.to_html()
    assert "<svg" in html and "data:image" not in html


def test_reliance_on_sensitive_features_is_measured_and_flagged(adult_split):
    train, test = adult_split
    model, summary = train_model(
        train.sample(4000, random_state=0),
        target="income",
        positive_label=">50K",
        sensitive_features=SENSITIVE,
        policy=TrainingPolicy(use_sensitive_features=True),
    )
    report = explain_model(
        model,
        test,
        features=summary.features,
        sensitive_features=SENSITIVE,
        policy=ExplainabilityPolicy(sample_size=200, max_sensitive_share=0.001),
        proxies={},
    )
    assert set(report.sensitive_features_used) == {"sex", "race"}
    assert report.sensitive_share > 0.001 and report.status is GateStatus.FAILED and not report.passed
    assert "> 0% allowed" in report.reason


def test_non_tree_model_falls_back_to_permutation():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(["x", "y"], 300), "g": rng.choice(["m", "f"], 300)})
    y = (df["a"] > 0).astype(int)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["b"]), remainder="passthrough"), LogisticRegression()
    )
    model.fit(df[["a", "b"]], y)
    report = explain_model(
        model,
        df,
        features=["a", "b"],
        sensitive_features=["g"],
        policy=ExplainabilityPolicy(sample_size=40),
        proxies={},
    )
    assert report.method.startswith("SHAP permutation")
    assert report.importance[0].feature == "a"


def test_one_hot_names_map_to_longest_matching_feature():
    features = ["education", "education-num", "sex"]
    assert _original_feature("cat__education_Bachelors", features) == "education"
    assert _original_feature("remainder__education-num", features) == "education-num"
    assert _original_feature("cat__sex_Female", features) == "sex"


def test_adults_proxies_for_sex_carry_the_attribution_the_sensitive_features_do_not(adult, adult_split, adult_model):
    """The issue's case: sex is not an input (0% of attribution), but marital-status and relationship
    stand in for it, and the gate counts them."""
    _, test = adult_split
    model, summary = adult_model
    proxies, source = known_proxies(
        adult, sensitive_features=SENSITIVE, features=summary.features, threshold=ProxyPolicy().threshold
    )
    assert {"marital-status", "relationship"} <= {f for f, attrs in proxies.items() if "sex" in attrs}
    report = explain_model(
        model,
        test,
        features=summary.features,
        sensitive_features=SENSITIVE,
        policy=ExplainabilityPolicy(sample_size=200),
        proxies=proxies,
        proxy_source=source,
    )
    assert report.sensitive_share == 0.0
    by = {f.feature: f.share for f in report.importance}
    assert report.proxy_share == pytest.approx(sum(by[f] for f in proxies))
    assert report.proxy_share > 0.25 and report.status is GateStatus.FAILED
    finding = next(f for f in report.verdict.findings if f.rule == "explainability.max_proxy_share")
    assert finding.status is GateStatus.FAILED and "marital-status" in finding.message
    assert "relationship" in report.to_markdown()


def test_reliance_on_proxies_is_not_judged_when_nobody_measured_them():
    rng = np.random.default_rng(1)
    g = rng.choice(["m", "f"], 400)
    df = pd.DataFrame({"a": rng.normal(size=400), "planted": np.where(g == "m", "p", "q"), "g": g})
    y = ((df["a"] > 0) | (df["planted"] == "p")).astype(int)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["planted"]), remainder="passthrough"), LogisticRegression()
    )
    model.fit(df[["a", "planted"]], y)
    policy = ExplainabilityPolicy(sample_size=60)
    blind = explain_model(model, df, features=["a", "planted"], sensitive_features=["g"], policy=policy)
    assert blind.status is GateStatus.NOT_JUDGED and "not measured" in blind.reason
    proxies, _ = known_proxies(df, sensitive_features=["g"], features=["a", "planted"], threshold=0.3)
    assert proxies == {"planted": ["g"]}
    seen = explain_model(model, df, features=["a", "planted"], sensitive_features=["g"], policy=policy, proxies=proxies)
    assert seen.proxy_share > 0.25 and seen.status is GateStatus.FAILED
    with pytest.raises(DataValidationError, match="not a datasheet"):
        known_proxies(
            df, sensitive_features=["g"], features=["a"], threshold=0.3, datasheet={"kind": "validation_report"}
        )


def test_proxies_dropped_from_training_stay_in_the_data_and_leave_the_model(adult_split):
    train, test = adult_split
    proxies, _ = known_proxies(
        train,
        sensitive_features=SENSITIVE,
        features=[c for c in train.columns if c not in (*SENSITIVE, "income")],
        threshold=ProxyPolicy().threshold,
    )
    model, summary = train_model(
        train.sample(4000, random_state=0),
        target="income",
        positive_label=">50K",
        sensitive_features=SENSITIVE,
        drop_proxies=list(proxies),
    )
    assert set(summary.dropped_proxies) == set(proxies) >= {"relationship", "marital-status"}
    assert not set(proxies) & set(summary.features) and "relationship" in test.columns
    report = explain_model(
        model, test, features=summary.features, sensitive_features=SENSITIVE,
        policy=ExplainabilityPolicy(sample_size=100), proxies=proxies,
    )  # fmt: skip
    assert report.proxy_share == 0.0 and report.passed


def _planted(n_big=1950, n_small=50, n_tiny=10, seed=0):
    """Feature b moves the label only in the small group (it is 0 elsewhere); a moves it everywhere."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(seed)
    g = np.array(["big"] * n_big + ["small"] * n_small + ["tiny"] * n_tiny)
    a = rng.normal(size=len(g))
    b = np.where(g == "small", rng.normal(size=len(g)) * 3, 0.0)
    df = pd.DataFrame({"a": a, "b": b, "g": g})
    model = make_pipeline(
        make_column_transformer(("passthrough", ["a", "b"])), HistGradientBoostingClassifier(random_state=0)
    )
    model.fit(df[["a", "b"]], (a + b > 0).astype(int))
    return model, df


def test_the_sample_is_stratified_by_group_and_importance_is_weighted_back_to_the_population():
    model, df = _planted()
    policy = ExplainabilityPolicy(sample_size=100, min_group_rows=30, max_proxy_share=1.0)
    report = explain_model(model, df, features=["a", "b"], sensitive_features=["g"], policy=policy, proxies={})
    # The small group's proportional share (2-3 of 100 rows) is raised to 30; the tiny one gives all it has.
    assert report.by_group_rows["g"] == {"big": 97, "small": 30, "tiny": 10}
    assert report.rows_explained == 137 and report.sampling["raised"] == ["small", "tiny"]
    # Weighted back, b's share is the population's (every row explained, weights alike); the sample's own
    # mean would make it several times larger, since the small group is over-sampled twelvefold.
    everyone = explain_model(
        model, df, features=["a", "b"], sensitive_features=["g"], proxies={},
        policy=ExplainabilityPolicy(sample_size=len(df), max_proxy_share=1.0),
    )  # fmt: skip
    share = {f.feature: f.share for f in report.importance}["b"]
    truth = {f.feature: f.share for f in everyone.importance}["b"]
    assert everyone.rows_explained == len(df) and truth > 0
    assert share == pytest.approx(truth, rel=0.35)
    assert "weights each explained row by its stratum's rows in the data" in report.to_markdown()
    # A group with fewer explained rows than the minimum gets no importance of its own, and says why.
    assert set(report.by_group["g"]) == {"big", "small"}
    md = report.to_markdown()
    assert "| tiny | 10 | too few rows sampled (10 < 30) |" in md and "| small | 30 | " in md


def test_proxies_are_marked_and_their_share_has_a_seeded_interval(adult, adult_split, adult_model):
    from kfp_rai.core.charts import ROLE_STYLES

    _, test = adult_split
    model, summary = adult_model
    proxies, source = known_proxies(
        adult, sensitive_features=SENSITIVE, features=summary.features, threshold=ProxyPolicy().threshold
    )
    explain = partial(explain_model, model, test, features=summary.features, sensitive_features=SENSITIVE,
                      policy=ExplainabilityPolicy(sample_size=200), proxies=proxies, proxy_source=source)  # fmt: skip
    report = explain(seed=3)
    low, high = report.proxy_share_interval
    assert low < report.proxy_share < high and high - low < 0.2
    assert explain(seed=3).proxy_share_interval == (low, high)  # seeded
    finding = next(f for f in report.verdict.findings if f.rule == "explainability.max_proxy_share")
    assert finding.interval == (low, high)
    figure = report._chart()
    assert "bootstrap resamples of the" in figure.caption and "seed 3" in figure.caption
    assert ROLE_STYLES["proxy"]["color"] in figure.svg and ">proxy<" in figure.svg
    # The caption counts the bars drawn: Adult's model has fewer than 15 features.
    assert f"all {len(report.importance)} features" in figure.caption and "15 largest" not in figure.caption
    md = report.to_markdown()
    assert "| marital-status | proxy |" in md and "| feature | role |" in md


def test_the_stratified_sample_stays_bounded_however_many_intersections(adult):
    """Groups, not intersection cells, are raised to min_group_rows: with four sensitive attributes
    (hundreds of cells) the sample stays within sample_size + one row per cell + groups x minimum,
    every group gets its minimum (or all its rows) and the weights add up to the data's rows."""
    from kfp_rai.core.groups import group_labels
    from kfp_rai.explainability._shap import _stratified_sample

    features = ["sex", "race", "native-country", "relationship"]
    sample, weights, strata, summary = _stratified_sample(adult, features, size=500, min_rows=30, seed=0)
    groups = sum(group_labels(adult[a]).nunique() for a in features)
    assert len(sample) <= 500 + len(summary["strata_rows"]) + groups * 30
    for a in features:
        have, drawn = group_labels(adult[a]).value_counts(), group_labels(sample[a]).value_counts()
        assert all(drawn.get(g, 0) >= min(30, n) for g, n in have.items()), a
    assert weights.sum() == pytest.approx(len(adult))


def test_the_permutation_background_is_drawn_with_the_sample_weights(monkeypatch):
    """The stratified sample over-draws small groups; the background a feature is replaced with is
    drawn by the rows' weights, so a row weighted zero never enters it."""
    import shap

    from kfp_rai.explainability._shap import _permutation_attributions

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.choice(["x", "y"], 400)})
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["b"]), remainder="passthrough"), LogisticRegression()
    )
    model.fit(X, (X["a"] > 0).astype(int))
    seen = []
    independent = shap.maskers.Independent

    def recording(data, *args, **kwargs):
        seen.append(np.asarray(data))
        return independent(data, *args, **kwargs)

    monkeypatch.setattr(shap.maskers, "Independent", recording)
    weights = np.where(np.arange(400) < 200, 0.0, 1.0)  # only the second half may be drawn
    _permutation_attributions(model, X, 0, weights)
    drawn = {round(v, 12) for v in seen[0][:, 0]}
    assert drawn and drawn <= {round(v, 12) for v in X["a"].iloc[200:]}
