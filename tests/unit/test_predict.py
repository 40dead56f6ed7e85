"""`kfp-rai predict`: batch scoring with a verified, approved version and the server's input checks;
its output is what `kfp-rai fairness` reads."""

import numpy as np
import pandas as pd
import pytest

from kfp_rai.cli import main
from kfp_rai.core.model_dir import load_model_dir
from kfp_rai.core.tables import read_table, write_table
from kfp_rai.discovery import pseudonym

KEY = "a-pseudonymization-key-of-32-bytes!"


@pytest.fixture(scope="module")
def registry(versions):
    """Version 1 approved and in production; version 2 a candidate no one approved."""
    return versions.registry


@pytest.fixture
def rows(tmp_path):
    data = read_table("bundled:adult-test").head(400).assign(customer=[f"c-{i:04d}" for i in range(400)])
    path = tmp_path / "rows.parquet"
    write_table(data, path)
    return data, path


def _predict(registry, data, out, *extra):
    return main(["predict", "--registry", str(registry), "--model", "adult-income", "--data", str(data),
                 "--output", str(out), *extra])  # fmt: skip


def test_scores_and_labels_in_the_datas_words_and_what_fairness_reads(registry, rows, tmp_path, capsys):
    data, path = rows
    out = tmp_path / "scored.parquet"
    assert _predict(registry, path, out, "--keep", "income", "--keep", "sex", "--keep", "race") == 0
    said = capsys.readouterr().out
    assert said.startswith("scored 400 rows with adult-income version 1 (sha256 ") and "NOT APPROVED" not in said
    scored = read_table(str(out))
    assert list(scored.columns) == ["probability", "label", "alerts", "income", "sex", "race"]
    assert set(scored["label"]) <= {">50K", "<=50K"}  # the data's own labels, never "not >50K"
    assert ((scored["probability"] >= 0.5) == (scored["label"] == ">50K")).all()
    # The very scores of the verified model (rounded as the server rounds them).
    model, meta = load_model_dir(registry / "adult-income" / "1")
    expected = model.predict_proba(data[list(meta["features"])])[:, 1]
    assert np.allclose(scored["probability"], np.round(expected, 6))
    assert "customer" not in scored.columns  # nothing but what was asked for is copied
    # Its output is the scored file `kfp-rai fairness` takes.
    code = main(["fairness", "--data", str(out), "--target", "income", "--prediction", "label", "--sensitive", "sex",
                 "--positive-label", ">50K", "--n-boot", "20", "--html", str(tmp_path / "f.html")])  # fmt: skip
    assert code in (0, 1) and "Fairness of scored predictions" in (tmp_path / "f.html").read_text()


def test_inputs_unlike_training_are_scored_and_flagged_without_their_values(registry, rows, tmp_path, capsys):
    data, _ = rows
    odd = data.head(3).assign(age=[140, 30, 30], workclass=["Private", "Astronaut", "Private"])
    path = tmp_path / "odd.csv"
    odd.to_csv(path, index=False)
    assert _predict(registry, path, tmp_path / "odd-scored.csv") == 0
    alerts = pd.read_csv(tmp_path / "odd-scored.csv", keep_default_na=False)["alerts"].tolist()
    assert alerts == ["age outside training range [17, 90]", "workclass: category not seen in training", ""]
    assert "Astronaut" not in (tmp_path / "odd-scored.csv").read_text()


def test_identifiers_leave_only_as_pseudonyms(registry, rows, tmp_path, capsys, monkeypatch):
    _, path = rows
    monkeypatch.delenv("KFP_RAI_HMAC_KEY", raising=False)
    monkeypatch.delenv("KFP_RAI_HMAC_KEY_FILE", raising=False)
    assert _predict(registry, path, tmp_path / "a.parquet", "--id", "customer") == 2
    assert "needs the pseudonymization key" in capsys.readouterr().err
    assert not (tmp_path / "a.parquet").exists()
    monkeypatch.setenv("KFP_RAI_HMAC_KEY", KEY)
    assert _predict(registry, path, tmp_path / "a.parquet", "--id", "customer") == 0
    ids = read_table(str(tmp_path / "a.parquet"))["id"]
    assert ids[0] == "hmac:" + pseudonym("c-0000", KEY.encode()) and not ids.str.contains("c-0").any()


@pytest.mark.parametrize(
    ("change", "extra", "said"),
    [
        (lambda d: d.drop(columns=["age"]), (), "the data lacks the model's features ['age']"),
        (lambda d: d.assign(age="forty"), (), "feature 'age' must hold numbers"),
        (lambda d: d.assign(age=np.inf), (), "feature 'age' holds infinite values"),
        (lambda d: d.assign(workclass=3), (), "feature 'workclass' must hold text"),
        (lambda d: d.head(0), (), "holds no rows"),
        (lambda d: d, ("--keep", "nowhere"), "the data has no columns ['nowhere'] to keep"),
        (lambda d: d, ("--keep", "label"), "would overwrite the output's own"),
        (
            lambda d: d.assign(contact=[f"person{i}@example.org" for i in range(len(d))]),
            ("--keep", "contact"),
            "contact",
        ),
        (lambda d: d, ("--version", "2"), "version 2 is not approved"),
        (lambda d: d, ("--alias", "challenger"), "challenger"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(registry, rows, tmp_path, capsys, change, extra, said):
    data, _ = rows
    path = tmp_path / "bad.parquet"
    write_table(change(data), path)
    out = tmp_path / "never.parquet"
    assert _predict(registry, path, out, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and said in err, err
    assert not out.exists()


def test_a_candidate_is_scored_only_when_asked_and_says_so(registry, rows, tmp_path, capsys):
    _, path = rows
    assert _predict(registry, path, tmp_path / "c.parquet", "--version", "2", "--allow-unapproved") == 0
    assert "NOT APPROVED" in capsys.readouterr().out
    assert _predict(registry, path, tmp_path / "c.parquet", "--version", "2", "--allow-unapproved") == 2
    assert "exists" in capsys.readouterr().err  # never overwritten without --overwrite
