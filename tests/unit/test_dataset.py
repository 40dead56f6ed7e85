import pandas as pd
import pytest

from kfp_rai.discovery import split_dataset, validate_dataset
from kfp_rai.errors import DataValidationError, InvalidParameterError

DF = pd.DataFrame({"x": range(20), "g": ["a", "b"] * 10, "y": ["yes"] * 5 + ["no"] * 15})


def test_summary():
    s = validate_dataset(DF, target="y", positive_label="yes", sensitive_features=["g"])
    assert s.rows == 20 and s.positive_rate == 0.25


@pytest.mark.parametrize(
    ("df", "kwargs", "fragment"),
    [
        (DF, {"target": "label"}, "column 'label' (target) is not in the data"),
        (DF, {"sensitive_features": ["sex"]}, "column 'sex' (sensitive feature)"),
        (DF.assign(y="no"), {}, "has a single value"),
        (DF, {"positive_label": "maybe"}, "positive label 'maybe' does not occur"),
        (DF.assign(y=["a", "b", "yes", "no"] * 5), {}, "has 4 distinct values"),
        (DF.iloc[0:0], {}, "holds no rows"),
    ],
)
def test_unusable_data_is_refused(df, kwargs, fragment):
    args = {"target": "y", "positive_label": "yes", "sensitive_features": ["g"], **kwargs}
    with pytest.raises(DataValidationError) as info:
        validate_dataset(df, **args)
    assert fragment in str(info.value)


def test_no_sensitive_feature_is_refused():
    with pytest.raises(InvalidParameterError, match="name at least one sensitive feature"):
        validate_dataset(DF, target="y", positive_label="yes", sensitive_features=[])


def test_split_is_stratified_and_seeded():
    a_train, a_test = split_dataset(DF, target="y", test_size=0.2, seed=1)
    b_train, b_test = split_dataset(DF, target="y", test_size=0.2, seed=1)
    pd.testing.assert_frame_equal(a_test, b_test)
    assert len(a_test) == 4 and (a_test["y"] == "yes").sum() == 1
    _, c_test = split_dataset(DF, target="y", test_size=0.2, seed=2)
    assert not a_test.equals(c_test)
    with pytest.raises(InvalidParameterError):
        split_dataset(DF, target="y", test_size=1.0, seed=0)
