import doctest
import math
from pathlib import Path

import pytest

import kfp_rai.core.verdict
import kfp_rai.policy
from kfp_rai.errors import InvalidParameterError
from kfp_rai.policy import SECTIONS, Constraint, Policy, reference_markdown

REPO = Path(__file__).resolve().parents[2]


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
        ({"validation": {"min_accuracy": 1.5}}, "policy validation.min_accuracy must be a number in [0, 1], got 1.5"),
        ({"validation": {"min_accuracy": "high"}}, "must be a number in [0, 1], got 'high'"),
        ({"validation": {"enforce": "yes"}}, "must be true or false"),
        ({"representativeness": {"min_group_size": 0}}, "must be an integer >= 1"),
        ({"drift": {"bins": 1}}, "must be an integer >= 2"),
        ({"training": {"exclude_features": "fnlwgt"}}, "list of column names"),
        ({"training": {"learning_rate": 0}}, "policy training.learning_rate must be a number > 0, got 0"),
        ([1, 2], "mapping of sections"),
        ({"validation": []}, "section 'validation' must be a mapping"),
        ({"validation": 0}, "section 'validation' must be a mapping"),
        ({"drift": {"psi_threshold": float("nan")}}, "must be a number > 0"),
        ({"drift": {"psi_threshold": float("inf")}}, "must be a number > 0"),
    ],
)
def test_invalid_values_are_refused_with_the_key_named(data, fragment):
    with pytest.raises(InvalidParameterError) as info:
        Policy.from_dict(data)
    assert fragment in str(info.value)


def test_learning_rate_is_not_capped_like_a_probability():
    assert Policy.from_dict({"training": {"learning_rate": 2.5}}).training.learning_rate == 2.5


def _outside(c: Constraint) -> list[object]:
    """Values each declaration must refuse, generated from the declaration alone."""
    if c.kind == "boolean":
        return ["yes", 1, None]
    if c.kind == "columns":
        return ["a-column", [1], {"a": 1}]
    if c.kind == "decisions":
        return ["drop", [["a", "drop"]], {"a": "erase"}, {"a": 1}, {1: "drop"}]
    if c.kind == "choice":
        return ["maybe", c.choices[0].upper(), 1, None, [c.choices[0]]]
    if c.kind == "text":
        return [1, True, None, ["a reason"], {"why": "x"}]
    if c.kind == "choices":
        return ["drift", ["weather"], [c.choices[0].upper()], [1], None, {"drift": True}]
    values: list[object] = ["1", True, None]
    step = 1 if c.kind == "integer" else 1e-9
    if c.low is not None:
        values.append(c.low if not c.low_closed else c.low - step)
    if c.high is not None:
        values.append(c.high if not c.high_closed else c.high + step)
    if c.kind == "integer":
        values.append(1.5)
    else:
        values += [math.nan, -math.inf] if c.low is not None else [math.nan]
    return values


def _inside(c: Constraint) -> list[object]:
    if c.kind == "boolean":
        return [True]
    if c.kind == "columns":
        return [["a"]]
    if c.kind == "decisions":
        return [{"a": choice} for choice in c.choices] + [{}]
    if c.kind == "choice":
        return list(c.choices)
    if c.kind == "choices":
        return [[], list(c.choices), [c.choices[-1]]]
    if c.kind == "text":
        return ["a written reason"]
    low = c.low if c.low is not None else -10
    high = c.high if c.high is not None else low + 10
    edges = [low] if c.low_closed else []
    edges += [high] if c.high is not None and c.high_closed else []
    middle = (low + high) / 2
    return [int(middle) if c.kind == "integer" else middle, *edges]


SETTINGS = [(section, s) for section in SECTIONS for s in section.settings()]


@pytest.mark.parametrize(("section", "setting"), SETTINGS, ids=[f"{sec.section}.{s.name}" for sec, s in SETTINGS])
def test_every_declared_setting_refuses_what_its_declaration_excludes(section, setting):
    where = f"{section.section}.{setting.name}"
    default = dict(setting.default) if setting.constraint.kind == "decisions" else setting.default
    assert setting.meaning and setting.constraint.check(where, default) == setting.default
    for value in _outside(setting.constraint):
        with pytest.raises(InvalidParameterError) as info:
            Policy.from_dict({section.section: {setting.name: value}})
        assert str(info.value) == f"policy {where} must be {setting.constraint.describe()}, got {value!r}"
    for value in _inside(setting.constraint):
        Policy.from_dict({section.section: {setting.name: value}})


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


def test_strict_example_spells_out_every_default():
    assert Policy.load(REPO / "examples" / "policies" / "strict.yaml") == Policy()
    spelled = Policy.load(REPO / "examples" / "policies" / "strict.yaml").to_dict()
    text = (REPO / "examples" / "policies" / "strict.yaml").read_text()
    assert all(f"{key}:" in text for section in spelled.values() for key in section)


def test_policy_reference_is_generated_from_the_declarations():
    assert (REPO / "docs" / "policy.md").read_text() == reference_markdown(), "run `make docs` and commit docs/"


@pytest.mark.parametrize("module", [kfp_rai.policy, kfp_rai.core.verdict])
def test_doctests_run(module):
    failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failed == 0


def test_a_gate_that_does_not_enforce_needs_its_written_reason():
    with pytest.raises(InvalidParameterError) as info:
        Policy.from_yaml("validation: {enforce: false}")
    assert "validation.enforce false but validation.exception_reason is empty" in str(info.value)
    with pytest.raises(InvalidParameterError, match="validation.gate_intersections false"):
        Policy.from_yaml("validation: {gate_intersections: false}")
    policy = Policy.from_yaml("validation: {enforce: false, exception_reason: '  Demo only.  '}")
    assert policy.validation.exception_reason == "Demo only." and not policy.validation.enforce
