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


# Every bad input of `kfp-rai run` is in tests/unit/test_bad_inputs.py (one table, also published
# as docs/bad-inputs.md).


def test_output_dir_with_files_is_refused(workdir, capsys):
    (workdir / "out").mkdir()
    (workdir / "out" / "keep.txt").write_text("mine")
    assert main(["run", "--output", "out"]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert (workdir / "out" / "keep.txt").read_text() == "mine"


def test_compile_writes_yaml(workdir, capsys):
    assert main(["compile", "--output", "out"]) == 0
    assert (workdir / "out" / "lifecycle.yaml").read_text().startswith("# PIPELINE DEFINITION")
    names = sorted(p.name for p in (workdir / "out").iterdir())  # every pipeline, no temp file left
    assert names == ["lifecycle.yaml", "partitioned-drift.yaml", "partitioned-fairness.yaml", "refresh.yaml"]
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


def test_a_scheduled_refresh_runs_one_at_a_time_without_catch_up_on_its_schedule_time(workdir, monkeypatch, capsys):
    import types

    import kfp
    import yaml

    calls: dict = {}

    class Recording:  # kfp.Client's surface that schedule() uses, recording what it was asked
        def __init__(self, host):
            calls["host"] = host

        def create_experiment(self, name):
            return types.SimpleNamespace(experiment_id=f"exp-{name}")

        def create_recurring_run(self, **kwargs):
            with open(kwargs["pipeline_package_path"], encoding="utf-8") as fh:
                calls.update(kwargs, spec=next(yaml.safe_load_all(fh)))
            return types.SimpleNamespace(recurring_run_id="rr-1")

    monkeypatch.setattr(kfp, "Client", Recording)
    from kfp_rai.pipelines import remote

    monkeypatch.setattr(remote, "_answers", lambda host: None)  # no API server here: the client is recorded
    args = ["schedule", "--host", "http://127.0.0.1:9", "--pipeline", "refresh", "--cron", "0 0 3 * * *",
            "--param", "model_name=adult-income", "--param", "current_data=s3://bucket/current/"]  # fmt: skip
    assert main(args) == 0
    assert "created recurring run rr-1" in capsys.readouterr().out
    assert calls["max_concurrency"] == 1 and calls["no_catchup"] is True and calls["enable_caching"] is False
    assert calls["job_name"] == "kfp-rai-refresh-recurring" and calls["cron_expression"] == "0 0 3 * * *"
    assert calls["params"]["model_name"] == "adult-income" and calls["params"]["launched_by"]
    spec = calls["spec"]
    assert spec["pipelineInfo"]["name"] == "kfp-rai-refresh"
    assert {"registry_uri", "model_name", "alias", "current_data", "labels", "audit_log", "policy", "seed"} <= set(
        spec["root"]["inputDefinitions"]["parameters"]
    )
    # the refresh's point in time is the run's schedule time (its creation time on a manual run)
    text = yaml.safe_dump(spec)
    assert "{{$.pipeline_job_schedule_time_utc}}" in text and "{{$.pipeline_job_create_time_utc}}" in text


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


def test_a_host_that_does_not_answer_is_refused_within_the_connect_timeout(monkeypatch, capsys):
    import socket
    import time

    from kfp_rai.pipelines import remote

    def silent(address, timeout):  # a host that drops packets: the connection times out
        assert timeout == remote.CONNECT_TIMEOUT_S == 5
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    started = time.monotonic()
    assert main(["schedule", "--host", "http://10.255.255.1:8888", "--cron", "0 0 3 * * *"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach Kubeflow Pipelines at http://10.255.255.1:8888: no answer within 5 s" in err
    assert time.monotonic() - started < 5  # and no client retries after it


def test_a_stale_key_file_does_not_break_runs_that_pseudonymize_nothing(workdir, monkeypatch):
    from kfp_rai.cli import build_parser
    from kfp_rai.cli._run import preflight as _preflight

    monkeypatch.setenv("KFP_RAI_HMAC_KEY_FILE", str(workdir / "gone"))  # e.g. exported for `serve`
    arguments = _preflight(build_parser().parse_args(["run"]))
    assert arguments["pseudonymize"] == []
    monkeypatch.setenv("KFP_RAI_HMAC_KEY", "short")
    with pytest.raises(InvalidParameterError, match="fewer than 16"):
        _preflight(build_parser().parse_args(["run", "--pseudonymize", "native-country"]))


def test_progress_lines_keep_the_status_apart_from_long_task_labels(tmp_path):
    import io
    import subprocess

    from kfp_rai.cli._progress import follow

    log = tmp_path / "log"
    log.write_text(
        "12:00:00.000 - INFO - Executing task 'check-registry'\n"
        "12:00:01.500 - INFO - Task 'check-registry' finished with status SUCCESS\n"
        "12:00:01.500 - INFO - Executing task 'refresh-gate-with-a-very-long-name-that-would-run-into-the-status'\n"
        "12:00:02.000 - INFO - Task 'refresh-gate-with-a-very-long-name-that-would-run-into-the-status' "
        "finished with status FAILURE\n"
    )
    process = subprocess.Popen(["true"])
    process.wait()
    out = io.StringIO()
    follow(process, log, quiet=False, out=out, nested=frozenset())
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        # the status word always stands alone, after at least one space
        assert " done " in line or " FAILURE " in line, line


# docker-py (7.2) leaves the socket of a failed connection to a unix socket unclosed: its leak, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_docker_runner_without_an_engine_or_image_is_one_line_naming_what_to_do(workdir, monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{workdir}/no-engine.sock")  # nothing listens there
    assert main(["run", "--runner", "docker", "--output", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no Docker engine is running" in err and "make image" in err
    assert not (workdir / "out").exists()  # nothing ran, nothing was written
    assert main(["run", "--image", "kfp-rai:test", "--output", "out"]) == 2
    assert "--image applies to --runner docker only" in capsys.readouterr().err


def test_the_docker_runner_names_the_build_command_when_the_image_is_missing(workdir, monkeypatch, capsys):
    from kfp_rai.pipelines import docker as runner

    class Images:
        def get(self, ref):
            import docker

            raise docker.errors.ImageNotFound(f"no such image: {ref}")

    class Engine:
        images = Images()

        def close(self):
            pass

    monkeypatch.setattr(runner, "_client", Engine)  # an engine that answers, without the image
    assert main(["run", "--runner", "docker", "--image", "reg/kfp-rai:9", "--output", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "reg/kfp-rai:9 is not on this Docker engine" in err and "make image" in err
    assert not (workdir / "out").exists()


def _commands(parser, prefix=()):
    """Every (command words, parser) of the CLI, subcommands included."""
    import argparse

    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name))


def test_no_option_a_user_gives_is_silently_ignored(capsys):
    """Walk every command: a list option accumulates (append/extend), never keeps only its last use;
    a single-valued option given twice is one line and exit 2, before anything runs."""
    import argparse

    from kfp_rai.cli import build_parser

    checked = 0
    for words, parser in _commands(build_parser()):
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0 or isinstance(action, argparse._HelpAction):
                continue
            flag = action.option_strings[-1]
            if action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction | argparse._ExtendAction):
                assert isinstance(action, argparse._AppendAction | argparse._ExtendAction), (words, flag)
                continue
            value = str(action.choices[0] if action.choices else "1")
            value = "0 0 3 * * *" if flag == "--cron" else value
            with pytest.raises(SystemExit) as info:
                main([*words, flag, value, flag, value])
            err = capsys.readouterr().err.strip()
            assert info.value.code == 2 and len(err.splitlines()) == 1, (words, flag, err)
            assert f"{flag} was given twice" in err or "invalid" in err, (words, flag, err)
            checked += "given twice" in err
    assert checked > 60  # every single-valued option of every command, bar a few whose "1" is invalid
