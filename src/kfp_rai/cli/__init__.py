"""The ``kfp-rai`` command line: run the lifecycle locally, compile and submit it, serve a model.

Errors a user can fix (missing file, unknown column, bad policy) print one line on stderr and exit
with 2; nothing is run, registered or left half-written. The CLI is the one part of the library
that may import kfp: it composes pipelines.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, NoReturn

from kfp_rai._version import __version__
from kfp_rai.cli._cluster import (
    PIPELINE_NAMES,
    add_remote_options,
    cmd_compile,
    cmd_deploy_manifest,
    cmd_schedule,
    cmd_submit,
)
from kfp_rai.cli._models import add_models_commands
from kfp_rai.cli._predict import add_predict_command
from kfp_rai.cli._run import cmd_run
from kfp_rai.cli._serving import add_serving_commands
from kfp_rai.cli._stats import add_stats_commands
from kfp_rai.errors import RAIError

EXIT_USAGE = 2


def fail(message: str) -> int:
    """Print ``message`` as one line on stderr and return the usage exit code."""
    one_line = " ".join(str(message).split())  # YAML parser errors span several lines
    print(f"kfp-rai: error: {one_line}", file=sys.stderr)
    return EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported as one line (and where to read more), not a usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"kfp-rai: error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


class _StoreOnce(argparse._StoreAction):
    """A single-valued option given twice is refused: argparse would keep the last value and drop the
    first without a word (a list option says so with action="append" or "extend")."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: Any = None
    ) -> None:
        seen: set[int] = self.__dict__.setdefault("_given_in", set())  # one parser per main(): per parse
        if id(namespace) in seen:
            parser.error(f"{option_string} was given twice: give it once (the first value would be ignored)")
        seen.add(id(namespace))
        super().__call__(parser, namespace, values, option_string)


def _once_only(parser: argparse.ArgumentParser) -> None:
    """Every single-valued option of ``parser`` and its subcommands becomes :class:`_StoreOnce`."""
    for action in parser._actions:
        if type(action) is argparse._StoreAction and action.option_strings:
            action.__class__ = _StoreOnce
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(p): p for p in action.choices.values()}.values():
                _once_only(sub)


def _add_run(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser(
        "run",
        help="run a pipeline locally with kfp.local (no cluster)",
        description="kfp-rai run [lifecycle]: train, judge and register a model. kfp-rai run refresh --model NAME "
        "--data CURRENT: judge the production model against current data and, if the policy says so, train a "
        "challenger. Exit 0: the pipeline ran (run.json says what it decided); 1: a task failed; 2: bad input.",
    )
    run.add_argument("pipeline", nargs="?", default="lifecycle", choices=["lifecycle", "refresh"])
    run.add_argument(
        "--data",
        help="lifecycle: training data, .csv or .parquet (default: bundled UCI Adult); refresh: the current data "
        "(a file or a directory of parquet partitions; default: Adult's test file for adult-income)",
    )
    run.add_argument("--current", help="current/production data checked for drift (default: Adult's test file)")
    run.add_argument("--target", help="label column (default: income)")
    run.add_argument("--positive-label", help="the favourable label value (default: >50K)")
    run.add_argument(
        "--sensitive", action="append", metavar="COL", help="sensitive column, repeatable (default: sex, race)"
    )
    run.add_argument(
        "--reference-population", metavar="FILE", help="reference population YAML (default: US Census 2000)"
    )
    run.add_argument(
        "--collection-plan",
        metavar="FILE",
        help="data collection plan YAML (default: the bundled data's own; other data without one is not judged)",
    )
    run.add_argument("--policy", metavar="FILE", help="policy YAML/JSON (default: built-in thresholds)")
    run.add_argument(
        "--reviewer",
        metavar="FILE",
        help="a reviewer's own metrics on the test split, compared with ours in validation (docs/reviewer.md)",
    )
    run.add_argument(
        "--registry", default="registry", metavar="DIR", help="model registry directory (default: ./registry)"
    )
    run.add_argument("--output", metavar="DIR", help="run directory (default: runs/<timestamp>-<pipeline>)")
    run.add_argument(
        "--model-name", help="registered model name (default: adult-income for the bundled data, else the file name)"
    )
    run.add_argument(
        "--intended-use",
        metavar="TEXT",
        help='what the model is for, on its card (default for your data: "not stated")',
    )
    run.add_argument("--test-size", type=float, help="held-out share (default: 0.3)")
    run.add_argument("--seed", type=int, default=0, help="random seed for split, training, sampling (default: 0)")
    run.add_argument("--model", metavar="NAME", help="refresh: the registered model to refresh")
    run.add_argument(
        "--alias", choices=["production", "challenger"], help="refresh: the alias naming the champion (production)"
    )
    run.add_argument("--notify-url", metavar="URL", help="refresh: a webhook told when a challenger awaits a decision")
    run.add_argument(
        "--labels",
        metavar="FILE",
        help="refresh: late labels (id, label, optionally sensitive attributes) of what serving scored; --data is "
        "then its traffic directory",
    )
    run.add_argument("--audit-log", metavar="FILE", help="refresh: the serving audit log the --labels are joined with")
    run.add_argument(
        "--pseudonymize",
        action="append",
        metavar="COL",
        help="identifier column replaced by an HMAC pseudonym at load (key: $KFP_RAI_HMAC_KEY), repeatable",
    )
    run.add_argument(
        "--deploy",
        action="store_true",
        help="deploy what the production alias names after a registration (in a cluster; skipped locally)",
    )
    run.add_argument(
        "--launched-by",
        metavar="WHO",
        help="who launches this run, recorded on the registration (default: your user name); with separation of "
        "duties, not the one who approves",
    )
    run.add_argument("--fail-when-blocked", action="store_true", help="a model the gates block fails the run (exit 1)")
    run.add_argument(
        "--runner",
        choices=["subprocess", "docker"],
        default="subprocess",
        help="where each task runs: subprocess (this Python, the default) or docker (each task in the kfp-rai "
        "image through kfp.local's DockerRunner: no network, as your user; needs a Docker engine and the image)",
    )
    run.add_argument(
        "--image",
        metavar="REF",
        help="--runner docker: the image the tasks run in (default: $KFP_RAI_IMAGE or the release image that "
        "`make image` builds)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    run.set_defaults(func=cmd_run)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kfp-rai", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kfp-rai {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(sub)

    comp = sub.add_parser("compile", help="compile pipeline YAML for the Kubeflow UI / SDK")
    comp.add_argument("pipeline", nargs="?", choices=PIPELINE_NAMES, help="one pipeline (default: all)")
    comp.add_argument("--output", default=".", metavar="DIR", help="directory for <pipeline>.yaml (default: .)")
    comp.add_argument("--image", metavar="REF", help="component image (default: $KFP_RAI_IMAGE or the release image)")
    comp.set_defaults(func=cmd_compile)

    submit = sub.add_parser("submit", help="start a run on a Kubeflow Pipelines cluster")
    add_remote_options(submit)
    submit.add_argument("--wait", action="store_true", help="wait for the run to finish; exit 1 unless it succeeded")
    submit.set_defaults(func=cmd_submit)

    sched = sub.add_parser("schedule", help="create a recurring run (KFP cron: 6 fields, seconds first)")
    add_remote_options(sched)
    sched.add_argument("--cron", required=True, help="e.g. '0 0 3 * * *' = every day at 03:00")
    sched.add_argument("--name", help="recurring run name")
    sched.set_defaults(func=cmd_schedule)

    manifest = sub.add_parser(
        "deploy-manifest",
        help="print the KServe InferenceService of a registry version (kubectl apply it to deploy or roll back)",
    )
    manifest.add_argument("--model-uri", help="a registry version: a directory or s3://.../NAME/VERSION")
    manifest.add_argument("--registry", metavar="DIR|URI", help="the registry of --model (default: ./registry)")
    manifest.add_argument("--model", metavar="NAME", help="the model whose --alias (default production) to deploy")
    manifest.add_argument("--alias", choices=["production", "challenger"], help="which alias (default production)")
    manifest.add_argument("--version", metavar="N", help="a version of --model instead of an alias")
    manifest.add_argument(
        "--storage-uri", metavar="URI", help="the version as the cluster fetches it (default: its registry URI)"
    )
    manifest.add_argument("--namespace", default="kfp-rai", help="namespace of the InferenceService (default: kfp-rai)")
    manifest.add_argument("--image", metavar="REF", help="serving image (default: $KFP_RAI_IMAGE or the release image)")
    manifest.add_argument(
        "--allow-unapproved", action="store_true", help="development only: a version no person approved"
    )
    manifest.set_defaults(func=cmd_deploy_manifest)

    add_models_commands(sub)
    add_serving_commands(sub)
    add_predict_command(sub)
    add_stats_commands(sub)
    _once_only(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RAIError as exc:
        return fail(str(exc))
    except OSError as exc:  # unwritable or missing directories, a file where a directory should be
        return fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))


if __name__ == "__main__":
    sys.exit(main())
