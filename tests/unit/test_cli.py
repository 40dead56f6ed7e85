"""Bad input: one line on stderr, exit code 2, no traceback, nothing run or registered."""

import pandas as pd
import pytest

from kfp_rai.cli import main
from kfp_rai.errors import InvalidParameterError


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
        (["--policy", "{broken_yaml}"], "the policy is not valid YAML"),
        (["--test-size", "1.5"], "--test-size must be between 0 and 1"),
        (["--model-name", "Bad Name"], "model name 'Bad Name' is not valid"),
        (["--output", "{a_file}"], "is a file"),
        (["--pseudonymize", "native-country"], "needs a key: set KFP_RAI_HMAC_KEY"),
        (["--pseudonymize", "sex"], "must stay readable"),
        (["--pseudonymize", "native-country", "--pseudonymize", "native-country"], "named more than once"),
        (["--policy", "{utf16_policy}"], "is not UTF-8 text"),
        (["--policy", "{a_dir}"], "is a directory: pass the file itself"),
        (["--registry", "{a_file}/registry"], "is a file, not a directory"),
        (["--data", "{no_features}"], "no feature columns are left"),
    ],
)
def test_bad_input_exits_2_with_one_line(workdir, capsys, monkeypatch, args, fragment):
    monkeypatch.delenv("KFP_RAI_HMAC_KEY", raising=False)
    monkeypatch.delenv("KFP_RAI_HMAC_KEY_FILE", raising=False)
    files = {
        "empty": workdir / "empty.csv",
        "good": _csv(workdir / "good.csv", GOOD),
        "one_class": _csv(workdir / "one.csv", GOOD.assign(income="<=50K")),
        "bad_policy": workdir / "policy.yaml",
        "bad_ref": workdir / "ref.yaml",
        "broken_yaml": workdir / "broken.yaml",
        "a_file": workdir / "a-file.txt",
        "utf16_policy": workdir / "notepad.yaml",
        "a_dir": workdir,
        "no_features": _csv(workdir / "nofeatures.csv", GOOD),
    }
    files["utf16_policy"].write_bytes("validation:\n  min_accuracy: 0.9\n".encode("utf-16"))
    files["broken_yaml"].write_text("validation:\n  min_accuracy: [0.8\n  threshold: 0.5\n")
    files["a_file"].write_text("not a directory")
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
    assert [p.name for p in (workdir / "out").iterdir()] == ["lifecycle.yaml"]  # no temp file left
    (workdir / "file").write_text("x")
    assert main(["compile", "--output", "file"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kfp-rai: error:")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["submit", "--host", "http://127.0.0.1:9"], "cannot reach Kubeflow Pipelines at http://127.0.0.1:9"),
        (["submit", "--host", "localhost:8080"], "must be an http(s) URL"),
        (["submit", "--host", "http://127.0.0.1:9", "--param", "foo=1"], "'foo' is not a parameter of lifecycle"),
        (["submit", "--host", "http://127.0.0.1:9", "--policy", "nope.yaml"], "policy file not found"),
        (["schedule", "--host", "http://127.0.0.1:9", "--cron", "0 3 * * *"], "must have 6 fields, seconds first"),
    ],
)
def test_remote_commands_fail_in_one_line_without_a_cluster(workdir, capsys, args, fragment):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]


def test_params_are_typed():
    from kfp_rai.pipelines.remote import parse_params

    params = parse_params("lifecycle", ["seed=3", 'sensitive_features=["sex"]', "target=income"])
    assert params == {"seed": 3, "sensitive_features": ["sex"], "target": "income"}


def test_unreachable_host_is_one_line_on_stderr_of_the_real_command(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    kfp_rai = Path(sys.executable).with_name("kfp-rai")
    done = subprocess.run(
        [str(kfp_rai), "submit", "--host", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("kfp-rai: error: cannot reach Kubeflow Pipelines") and done.stdout == ""


def test_a_stale_key_file_does_not_break_runs_that_pseudonymize_nothing(workdir, monkeypatch):
    from kfp_rai.cli import build_parser
    from kfp_rai.cli._run import preflight as _preflight

    monkeypatch.setenv("KFP_RAI_HMAC_KEY_FILE", str(workdir / "gone"))  # e.g. exported for `serve`
    arguments = _preflight(build_parser().parse_args(["run"]))
    assert arguments["pseudonymize"] == []
    monkeypatch.setenv("KFP_RAI_HMAC_KEY", "short")
    with pytest.raises(InvalidParameterError, match="fewer than 16"):
        _preflight(build_parser().parse_args(["run", "--pseudonymize", "native-country"]))
