import pytest

from kfp_rai.errors import InvalidParameterError
from kfp_rai.policy import Policy


def test_defaults_and_partial_override():
    policy = Policy.from_dict({"validation": {"min_demographic_parity_ratio": 0.9}})
    assert policy.validation.min_demographic_parity_ratio == 0.9
    assert policy.validation.max_equalized_odds_difference == 0.1
    assert policy.representativeness == Policy().representativeness


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"validaton": {}}, "unknown policy key 'validaton'"),
        ({"validation": {"min_acc": 0.9}}, "unknown policy key 'min_acc'"),
        ({"validation": {"min_accuracy": 1.5}}, "validation.min_accuracy must be in (0, 1]"),
        ({"validation": {"min_accuracy": "high"}}, "must be a number"),
        ({"validation": {"enforce": "yes"}}, "must be true or false"),
        ({"representativeness": {"min_group_size": 0}}, "must be >= 1"),
        ({"drift": {"bins": 1}}, "must be >= 2"),
        ({"training": {"exclude_features": "fnlwgt"}}, "list of column names"),
        ([1, 2], "mapping of sections"),
        ({"drift": {"psi_threshold": float("nan")}}, "must be a finite number"),
        ({"drift": {"psi_threshold": float("inf")}}, "must be a finite number"),
    ],
)
def test_invalid_values_are_refused_with_the_key_named(data, fragment):
    with pytest.raises(InvalidParameterError, match=None) as info:
        Policy.from_dict(data)
    assert fragment in str(info.value)


def test_hash_is_canonical():
    a = Policy.from_yaml("validation:\n  min_accuracy: 0.8\n")
    b = Policy.from_yaml("{}")
    assert a.sha256 == b.sha256  # equal content, different text
    assert Policy.from_dict({"validation": {"min_accuracy": 0.7}}).sha256 != b.sha256


def test_yaml_round_trip_and_file_errors(tmp_path):
    policy = Policy.from_dict({"training": {"exclude_features": ["fnlwgt"]}})
    assert Policy.from_yaml(policy.to_yaml()) == policy
    with pytest.raises(InvalidParameterError, match="policy file not found"):
        Policy.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("validation: [unclosed")
    with pytest.raises(InvalidParameterError, match="not valid YAML"):
        Policy.load(bad)
