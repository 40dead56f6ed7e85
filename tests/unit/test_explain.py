import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from kfp_rai.core.verdict import GateStatus
from kfp_rai.explainability import explain_model
from kfp_rai.explainability._shap import _original_feature
from kfp_rai.policy import ExplainabilityPolicy, TrainingPolicy
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
        policy=ExplainabilityPolicy(sample_size=200),
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
        model, df, features=["a", "b"], sensitive_features=["g"], policy=ExplainabilityPolicy(sample_size=40)
    )
    assert report.method.startswith("SHAP permutation")
    assert report.importance[0].feature == "a"


def test_one_hot_names_map_to_longest_matching_feature():
    features = ["education", "education-num", "sex"]
    assert _original_feature("cat__education_Bachelors", features) == "education"
    assert _original_feature("remainder__education-num", features) == "education-num"
    assert _original_feature("cat__sex_Female", features) == "sex"
