import pandas as pd
import pytest

from kfp_rai.core.bundled import default_intended_use, default_model_name, load_bundled
from kfp_rai.core.files import sha256_file
from kfp_rai.core.tables import read_table, write_table
from kfp_rai.errors import DataValidationError


def test_parquet_round_trip_records_metadata(tmp_path):
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})
    meta = write_table(df, tmp_path / "d.parquet")
    assert meta["rows"] == 3 and meta["columns"] == 2
    assert meta["sha256"] == sha256_file(tmp_path / "d.parquet")
    assert set(meta["schema"]) == {"a", "b"}
    pd.testing.assert_frame_equal(read_table(tmp_path / "d.parquet"), df, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == ["d.parquet"]  # no temp file left behind


def test_csv_is_read(tmp_path):
    (tmp_path / "d.csv").write_text("a, b\n1, x\n2, y\n")
    assert list(read_table(tmp_path / "d.csv").columns) == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.csv", None, "data file not found"),
        ("empty.csv", "", "is empty"),
        ("header.csv", "a,b\n", "holds no rows"),
        ("data.txt", "a\n1\n", "cannot tell the format"),
        ("broken.parquet", "not parquet", "cannot read"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataValidationError) as info:
        read_table(path)
    assert fragment in str(info.value)


def test_bundled_adult_matches_the_documented_counts():
    train, test = load_bundled("adult"), load_bundled("adult-test")
    assert train.shape == (32561, 15) and test.shape == (16281, 15)
    assert set(test["income"]) == {"<=50K", ">50K"}  # trailing "." removed
    assert train["workclass"].isna().sum() > 0  # "?" is missing
    assert train["sex"].value_counts(normalize=True)["Male"] == pytest.approx(0.669, abs=0.001)
    with pytest.raises(DataValidationError, match="unknown bundled data set"):
        read_table("bundled:mnist")


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("bundled:adult", "adult-income"),
        ("bundled:adult-test", "adult-income"),
        ("/data/Loan Applications 2024.csv", "loan-applications-2024"),
        ("scores.csv.gz", "scores"),
        ("s3://bucket/claims.parquet", "claims"),
        ("___.csv", "model"),
    ],
)
def test_bundled_defaults_apply_only_to_bundled_data(source, name):
    from kfp_rai.production import validate_model_name

    assert validate_model_name(default_model_name(source)) == name
    if source.startswith("bundled:"):
        assert "UCI Adult" in default_intended_use(source)
    else:
        assert default_intended_use(source).startswith("Not stated") and "Adult" not in default_intended_use(source)
