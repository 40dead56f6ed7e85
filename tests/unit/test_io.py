import pandas as pd
import pytest

from kfp_rai.datasets import load_adult
from kfp_rai.errors import DataValidationError
from kfp_rai.io import read_table, sha256_file, write_table


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
    train, test = load_adult("train"), load_adult("test")
    assert train.shape == (32561, 15) and test.shape == (16281, 15)
    assert set(test["income"]) == {"<=50K", ">50K"}  # trailing "." removed
    assert train["workclass"].isna().sum() > 0  # "?" is missing
    assert train["sex"].value_counts(normalize=True)["Male"] == pytest.approx(0.669, abs=0.001)
    with pytest.raises(DataValidationError, match="unknown bundled data set"):
        read_table("bundled:mnist")
