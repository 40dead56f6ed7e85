import pandas as pd
import pytest

from kfp_rai.discovery import hmac_key_from_env, pseudonymize_columns
from kfp_rai.errors import DataValidationError, InvalidParameterError

K1, K2 = b"first-key-0123456789", b"second-key-0123456789"
DF = pd.DataFrame({"name": ["Ada", "Bob", None, "Ada"], "sex": ["F", "M", "F", "F"], "y": [1, 0, 1, 0]})


def test_pseudonyms_are_keyed_deterministic_and_hide_the_value():
    out = pseudonymize_columns(DF, ["name"], key=K1, protected=["y", "sex"])
    assert out["name"][0] == out["name"][3] != out["name"][1] and pd.isna(out["name"][2])
    assert "Ada" not in out["name"].dropna().tolist() and len(out["name"][0]) == 16
    other = pseudonymize_columns(DF, ["name"], key=K2)
    assert other["name"][0] != out["name"][0]
    assert DF["name"][0] == "Ada"  # the input is not modified
    assert pseudonymize_columns(DF, [], key=None) is DF


@pytest.mark.parametrize(
    ("columns", "key", "error", "fragment"),
    [
        (["name"], None, InvalidParameterError, "needs a key: set KFP_RAI_HMAC_KEY"),
        (["name"], b"short", InvalidParameterError, "5 bytes, fewer than 16"),
        (["email"], K1, DataValidationError, "not in the data"),
        (["sex"], K1, InvalidParameterError, "must stay readable"),
    ],
)
def test_fails_closed(columns, key, error, fragment):
    with pytest.raises(error, match=None) as info:
        pseudonymize_columns(DF, columns, key=key, protected=["y", "sex"])
    assert fragment in str(info.value)


def test_key_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("KFP_RAI_HMAC_KEY", raising=False)
    monkeypatch.delenv("KFP_RAI_HMAC_KEY_FILE", raising=False)
    assert hmac_key_from_env() is None
    (tmp_path / "key").write_text("secret-from-file\n")
    monkeypatch.setenv("KFP_RAI_HMAC_KEY_FILE", str(tmp_path / "key"))
    assert hmac_key_from_env() == b"secret-from-file"
    monkeypatch.setenv("KFP_RAI_HMAC_KEY", "direct")
    assert hmac_key_from_env() == b"direct"


def test_identifier_columns_are_never_features():
    from kfp_rai.policy import TrainingPolicy
    from kfp_rai.training._train import feature_columns

    df = pd.DataFrame({"id": ["a"], "age": [1], "sex": ["F"], "y": [1]})
    kwargs = {"target": "y", "sensitive_features": ["sex"], "policy": TrainingPolicy()}
    assert feature_columns(df, **kwargs) == ["id", "age"]
    assert feature_columns(df, identifier_columns=["id"], **kwargs) == ["age"]
