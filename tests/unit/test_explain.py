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
