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
        (["name", "name"], K1, InvalidParameterError, "named more than once"),
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
    (tmp_path / "key").chmod(0o600)
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


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_identifiers_are_read_as_text_so_equal_ids_get_equal_pseudonyms(tmp_path, suffix):
    from kfp_rai.core.tables import read_table, write_table
    from kfp_rai.discovery import pseudonym

    raw = pd.DataFrame({"id": ["000123", "123", None], "y": [1, 0, 1]})
    path = tmp_path / f"ids.{suffix}"
    if suffix == "csv":
        raw.to_csv(path, index=False)
    else:  # parquet written by someone else from pandas, where integer ids with a gap became float64
        write_table(pd.DataFrame({"id": [123.0, 7.0, None], "y": [1, 0, 1]}), path)
    df = read_table(path, text_columns=["id"])
    out = pseudonymize_columns(df, ["id"], key=K1)
    if suffix == "csv":
        assert df["id"].tolist()[:2] == ["000123", "123"]  # leading zeros kept, no "123.0"
        assert out["id"][0] != out["id"][1]
    # What the serving app computes for the id it receives as text is the same pseudonym.
    assert out["id"][1 if suffix == "csv" else 0] == pseudonym("123", K1)
    assert pd.isna(out["id"][2])


def test_serve_refuses_a_short_key(monkeypatch, capsys, tmp_path):
    from kfp_rai.cli import main

    monkeypatch.setenv("KFP_RAI_HMAC_KEY", "short")
    assert main(["serve", "--model-uri", str(tmp_path)]) == 2
    assert "fewer than 16" in capsys.readouterr().err


def test_identifier_columns_are_never_drift_columns():
    from kfp_rai.refresh import detect_drift

    ref = pd.DataFrame({"id": [f"a{i}" for i in range(200)], "x": [i % 7 for i in range(200)]})
    cur = pd.DataFrame({"id": [f"b{i}" for i in range(200)], "x": [i % 7 for i in range(200)]})
    assert "id" in {c.column for c in detect_drift(ref, cur).columns}
    result = detect_drift(ref, cur, identifier_columns=["id"])
    assert [c.column for c in result.columns] == ["x"] and not result.drift_detected
