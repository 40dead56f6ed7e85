"""Bad input: one line on stderr, exit code 2, no traceback, nothing run or registered."""

import pandas as pd
import pytest

from kfp_rai.cli import main


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _csv(path, df):
    df.to_csv(path, index=False)
    return str(path)


GOOD = pd.DataFrame({"income": [">50K", "<=50K"] * 10, "sex": ["Male", "Female"] * 10, "race": ["White"] * 20})


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--data", "missing.csv"], "data file not found"),
        (["--data", "{empty}"], "is empty"),
        (["--data", "{good}", "--target", "label"], "column 'label' (target) is not in the data"),
        (["--data", "{good}", "--sensitive", "age"], "column 'age' (sensitive feature)"),
        (["--data", "{one_class}"], "has a single value"),
        (["--data", "{good}", "--positive-label", "yes"], "positive label 'yes' does not occur"),
        (["--policy", "nope.yaml"], "policy file not found"),
        (["--policy", "{bad_policy}"], "unknown policy key 'min_acc'"),
        (["--reference-population", "{bad_ref}"], "lacks 'source'"),
    ],
)
def test_bad_input_exits_2_with_one_line(workdir, capsys, args, fragment):
    files = {
        "empty": workdir / "empty.csv",
        "good": _csv(workdir / "good.csv", GOOD),
        "one_class": _csv(workdir / "one.csv", GOOD.assign(income="<=50K")),
        "bad_policy": workdir / "policy.yaml",
        "bad_ref": workdir / "ref.yaml",
    }
    files["empty"].write_text("")
    files["bad_policy"].write_text("validation:\n  min_acc: 0.9\n")
    files["bad_ref"].write_text("year: 2000\nattributes: {}\n")
    code = main(["run", *[a.format(**files) for a in args]])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kfp-rai: error: ") and fragment in lines[0]
    assert "Traceback" not in out + err
    assert not (workdir / "registry").exists() and not (workdir / "runs").exists()


def test_output_dir_with_files_is_refused(workdir, capsys):
    (workdir / "out").mkdir()
    (workdir / "out" / "keep.txt").write_text("mine")
    assert main(["run", "--output", "out"]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert (workdir / "out" / "keep.txt").read_text() == "mine"


def test_compile_writes_yaml(workdir, capsys):
    assert main(["compile", "--output", "out"]) == 0
    assert (workdir / "out" / "lifecycle.yaml").read_text().startswith("# PIPELINE DEFINITION")
