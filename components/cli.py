"""The ``kfp-rai`` command line: run the lifecycle locally, compile it for Kubeflow.

Errors a user can fix (missing file, unknown column, bad policy) print one line on stderr and
exit with 2; nothing is run, registered or left half-written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kfp_rai._version import __version__
from kfp_rai.errors import RAIError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK_START = re.compile(r"Executing task '([^']+)'")
_TASK_END = re.compile(r"Task '([^']+)' finished with status (\w+)")
_INNER_FAIL = re.compile(r"Inner task failed: '([^']+)'")
_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*Error): (.+)$")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _fail(message: str) -> int:
    one_line = " ".join(str(message).split())  # YAML parser errors span several lines
    print(f"kfp-rai: error: {one_line}", file=sys.stderr)
    return EXIT_USAGE


def _absolute(value: str) -> str:
    return value if value.startswith("bundled:") or "://" in value else str(Path(value).expanduser().resolve())


def _preflight(args: argparse.Namespace) -> dict[str, Any]:
    """Check every input before anything runs; return the pipeline arguments."""
    from kfp_rai.discovery import ReferencePopulation, hmac_key_from_env, pseudonymize_columns, validate_dataset
    from kfp_rai.io import read_table
    from kfp_rai.policy import Policy
    from kfp_rai.production import validate_model_name

    if not 0.0 < args.test_size < 1.0:
        raise RAIError(f"--test-size must be between 0 and 1 (the held-out share), got {args.test_size}")
    validate_model_name(args.model_name)
    sensitive = args.sensitive or ["sex", "race"]
    data = args.data or "bundled:adult"
    current = args.current or ("bundled:adult-test" if args.data is None else data)
    pseudonymize = args.pseudonymize or []
    key = hmac_key_from_env() if pseudonymize else None
    for label, source in (("--data", data), ("--current", current)):
        try:
            df = read_table(source, text_columns=pseudonymize)
            validate_dataset(df, target=args.target, positive_label=args.positive_label, sensitive_features=sensitive)
            pseudonymize_columns(df.head(5), pseudonymize, key=key, protected=[args.target, *sensitive])
        except RAIError as exc:
            raise type(exc)(f"{label} {source}: {exc}") from exc
    policy_text = ""
    if args.policy:
        Policy.load(args.policy)  # validates; the pipeline gets the text so it runs anywhere
        policy_text = Path(args.policy).read_text(encoding="utf-8")
    reference_text = ""
    if args.reference_population:
        ReferencePopulation.load(args.reference_population)
        reference_text = Path(args.reference_population).read_text(encoding="utf-8")
    registry = Path(args.registry).expanduser().resolve()
    if registry.exists() and not registry.is_dir():
        raise RAIError(f"--registry {registry} exists and is not a directory")
    return {
        "data": _absolute(data),
        "current_data": _absolute(current),
        "target": args.target,
        "positive_label": args.positive_label,
        "sensitive_features": sensitive,
        "reference_population": reference_text,
        "policy": policy_text,
        "model_name": args.model_name,
        "registry_uri": str(registry),
        "test_size": args.test_size,
        "seed": args.seed,
        "deploy": args.deploy,
        "pseudonymize": pseudonymize,
    }


def _run_dir(args: argparse.Namespace) -> Path:
    if args.output:
        run_dir = Path(args.output).expanduser().resolve()
        if run_dir.exists() and not run_dir.is_dir():
            raise RAIError(f"--output {run_dir} is a file: choose a new or empty directory")
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RAIError(f"--output {run_dir} already holds files: choose a new or empty directory")
    else:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path("runs").resolve() / f"{stamp}-{args.pipeline}"
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = Path("runs").resolve() / f"{stamp}-{args.pipeline}-{n}"
    return run_dir


def _stage_of(task: str) -> str:
    from kfp_rai._runrecord import _place

    place = _place(task)
    return place[0] if place else "-"


def _follow(process: subprocess.Popen[bytes], log_path: Path, quiet: bool) -> list[str]:
    """Show task progress from kfp's log while the child runs; return the log's lines."""
    started: dict[str, float] = {}
    position = 0
    lines: list[str] = []
    pending = ""
    while True:
        done = process.poll() is not None
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            fh.seek(position)
            chunk = fh.read()
            position = fh.tell()
        pending += chunk
        *complete, pending = pending.split("\n")
        for raw in complete:
            line = _ANSI.sub("", raw)
            lines.append(line)
            if quiet:
                continue
            if m := _TASK_START.search(line):
                started[m.group(1)] = time.monotonic()
                print(f"  [{_stage_of(m.group(1)):<10}] {m.group(1)} ...", flush=True)
            elif m := _TASK_END.search(line):
                took = time.monotonic() - started.get(m.group(1), time.monotonic())
                mark = "done" if m.group(2) == "SUCCESS" else m.group(2)
                print(f"  [{_stage_of(m.group(1)):<10}] {m.group(1)} {mark} ({took:.1f}s)", flush=True)
        if done:
            if pending:
                lines.append(_ANSI.sub("", pending))
            return lines
        time.sleep(0.2)


def _error_from_log(lines: list[str]) -> tuple[str | None, str | None]:
    task = None
    message = None
    for line in lines:
        if m := _INNER_FAIL.search(line):
            task = m.group(1)
        if (m := _ERROR_LINE.match(line.strip())) and (m.group(1) != "RuntimeError" or message is None):
            message = f"{m.group(1)}: {m.group(2)}"
    return task, message


def _print_summary(record: dict[str, Any], run_dir: Path) -> None:
    print()
    print(f"Pipeline {record['pipeline']}: {record['status'].upper()}")
    for name, stage in record["stages"].items():
        reason = stage["reason"]
        if stage["status"] == "passed" and len(reason) > 150:  # failures are shown whole: they say why
            reason = reason[:147] + "..."
        print(f"  {name:<11} {stage['status'].upper():<8} {reason}")
    prod = record["stages"]["production"]
    if prod.get("registered"):
        print(
            f"\nRegistered model version {prod['version']} (sha256 {prod['sha256'][:12]}...) in {prod['registry_uri']}"
        )
    try:
        shown = run_dir.relative_to(Path.cwd())
    except ValueError:
        shown = run_dir
    print(f"\nRun directory: {shown}  (run.json, reports in */*.html, model card in production/)")


def cmd_run(args: argparse.Namespace) -> int:
    from kfp_rai._runrecord import build_run_record, collect_outputs, validate_run_record
    from kfp_rai.io import write_json

    try:
        arguments = _preflight(args)
        run_dir = _run_dir(args)
    except RAIError as exc:
        return _fail(str(exc))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    log_path = run_dir / "logs" / "kfp-local.log"
    started = _now()
    print(f"kfp-rai {__version__}: running the {args.pipeline} pipeline locally (kfp.local) into {run_dir}")
    with tempfile.TemporaryDirectory(prefix="kfp-rai-") as scratch:
        spec = {
            "name": args.pipeline,
            "arguments": arguments,
            "pipeline_root": str(Path(scratch) / "outputs"),
            "result": str(Path(scratch) / "result.json"),
        }
        Path(scratch, "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "kfp_rai.pipelines.local", str(Path(scratch, "spec.json"))],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=scratch,
            )
            try:
                lines = _follow(process, log_path, args.quiet)
            except KeyboardInterrupt:
                process.terminate()
                process.wait()
                print("kfp-rai: interrupted; partial outputs are in", run_dir, file=sys.stderr)
                return 130
        result_path = Path(spec["result"])
        result = (
            json.loads(result_path.read_text())
            if result_path.is_file()
            else {"status": "failed", "error": "the local runner exited without a result", "pipeline_dir": None}
        )
        failed_task, message = _error_from_log(lines) if result["status"] != "succeeded" else (None, None)
        tasks = collect_outputs(Path(result["pipeline_dir"]), run_dir) if result.get("pipeline_dir") else {}
    record = build_run_record(
        run_dir,
        tasks,
        pipeline=args.pipeline,
        status=result["status"],
        error=message or result.get("error"),
        failed_task=failed_task,
        arguments={k: v for k, v in arguments.items() if k not in ("policy",)},
        started=started,
        finished=_now(),
    )
    record["arguments"]["policy"] = args.policy or "(default policy)"
    if args.reference_population:
        record["arguments"]["reference_population"] = args.reference_population
    validate_run_record(record)
    write_json(run_dir / "run.json", record, sort_keys=False)
    _print_summary(record, run_dir)
    if result["status"] != "succeeded":
        print(f"kfp-rai: error: {record['error']} (full log: {log_path})", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from kfp_rai.pipelines.compile import compile_pipeline

    names = [args.pipeline] if args.pipeline else ["lifecycle"]
    if args.image is not None and not re.fullmatch(r"[\w.\-/:@]+", args.image):
        raise RAIError(f"--image {args.image!r} is not an image reference like registry/name:tag")
    for name in names:
        print(compile_pipeline(name, args.output, image=args.image))
    return EXIT_OK


def _remote_params(args: argparse.Namespace) -> dict[str, Any]:
    from kfp_rai.discovery import ReferencePopulation
    from kfp_rai.pipelines.remote import parse_params, read_text_param
    from kfp_rai.policy import Policy

    params = parse_params(args.pipeline, args.param or [])
    if (policy := read_text_param(args.policy, "policy")) is not None:
        Policy.from_yaml(policy)
        params["policy"] = policy
    if (reference := read_text_param(args.reference_population, "reference population")) is not None:
        ReferencePopulation.from_yaml(reference)
        params["reference_population"] = reference
    return params


def cmd_submit(args: argparse.Namespace) -> int:
    from kfp_rai.pipelines.remote import submit

    params = _remote_params(args)
    done = submit(
        args.host,
        args.pipeline,
        params,
        experiment=args.experiment,
        image=args.image,
        service_account=args.service_account,
        wait=args.wait,
    )
    print(f"submitted {done.kind} {done.id}: {done.url}" + (f" -> {done.state}" if done.state else ""))
    return EXIT_OK if done.state in (None, "SUCCEEDED") else EXIT_FAILED


def cmd_schedule(args: argparse.Namespace) -> int:
    from kfp_rai.pipelines.remote import check_cron, schedule

    check_cron(args.cron)
    params = _remote_params(args)
    done = schedule(
        args.host,
        args.pipeline,
        params,
        cron=args.cron,
        experiment=args.experiment,
        job_name=args.name or f"kfp-rai-{args.pipeline}-recurring",
        image=args.image,
        service_account=args.service_account,
    )
    print(f"created {done.kind} {done.id}: {done.url}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from kfp_rai.discovery import check_key, hmac_key_from_env
    from kfp_rai.production._serving import ModelService, serve

    key = hmac_key_from_env()
    if key is not None:
        check_key(key)  # the same rule as the pipeline: audit-log pseudonyms must be as strong
    service = ModelService(args.model_uri, audit_log=args.audit_log, state_dir=args.state_dir, hmac_key=key)
    server = serve(service, args.host, args.port)
    info = service.describe()
    print(
        f"serving {info['name']} version {info['version']} on http://{args.host}:{args.port} "
        f"(audit log {args.audit_log})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


def cmd_disable(args: argparse.Namespace) -> int:
    from kfp_rai.production._serving import disable

    disable(args.state_dir, args.reason)
    print(f"disabled: every prediction from the server using {args.state_dir} is now refused (503)")
    return EXIT_OK


def cmd_enable(args: argparse.Namespace) -> int:
    from kfp_rai.production._serving import enable

    enable(args.state_dir)
    print("enabled")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from kfp_rai.production._serving import verify_audit_log

    if not Path(args.log).is_file():
        raise RAIError(f"no audit log at {args.log}: a missing log cannot be verified (was it deleted?)")
    ok, count, message = verify_audit_log(args.log)
    print(f"{args.log}: {message}", file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED


def _remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="Kubeflow Pipelines API/UI URL, e.g. http://localhost:8080")
    parser.add_argument("--pipeline", default="lifecycle", choices=["lifecycle"])
    parser.add_argument("--param", action="append", metavar="NAME=VALUE", help="pipeline parameter (repeatable)")
    parser.add_argument("--policy", metavar="FILE", help="policy YAML, passed as the policy parameter")
    parser.add_argument("--reference-population", metavar="FILE", help="reference population YAML")
    parser.add_argument("--experiment", default="kfp-rai", help="KFP experiment (default: kfp-rai)")
    parser.add_argument("--image", metavar="REF", help="component image for this submission")
    parser.add_argument("--service-account", metavar="NAME", help="Kubernetes service account of the run's pods")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kfp-rai", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kfp-rai {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a pipeline locally with kfp.local (no cluster)")
    run.add_argument("pipeline", nargs="?", default="lifecycle", choices=["lifecycle"])
    run.add_argument("--data", help="training data, .csv or .parquet (default: bundled UCI Adult)")
    run.add_argument("--current", help="current/production data checked for drift (default: Adult's test file)")
    run.add_argument("--target", default="income", help="label column (default: income)")
    run.add_argument("--positive-label", default=">50K", help="the favourable label value (default: >50K)")
    run.add_argument(
        "--sensitive", action="append", metavar="COL", help="sensitive column, repeatable (default: sex, race)"
    )
    run.add_argument(
        "--reference-population", metavar="FILE", help="reference population YAML (default: US Census 2000)"
    )
    run.add_argument("--policy", metavar="FILE", help="policy YAML/JSON (default: built-in thresholds)")
    run.add_argument(
        "--registry", default="registry", metavar="DIR", help="model registry directory (default: ./registry)"
    )
    run.add_argument("--output", metavar="DIR", help="run directory (default: runs/<timestamp>-<pipeline>)")
    run.add_argument("--model-name", default="adult-income", help="registered model name")
    run.add_argument("--test-size", type=float, default=0.3, help="held-out share (default: 0.3)")
    run.add_argument("--seed", type=int, default=0, help="random seed for split, training, sampling")
    run.add_argument(
        "--pseudonymize",
        action="append",
        metavar="COL",
        help="identifier column replaced by an HMAC pseudonym at load (key: $KFP_RAI_HMAC_KEY), repeatable",
    )
    run.add_argument("--deploy", action="store_true", help="deploy a registered model (in a cluster; skipped locally)")
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    run.set_defaults(func=cmd_run)

    comp = sub.add_parser("compile", help="compile pipeline YAML for the Kubeflow UI / SDK")
    comp.add_argument("pipeline", nargs="?", choices=["lifecycle"])
    comp.add_argument("--output", default=".", metavar="DIR", help="directory for <pipeline>.yaml (default: .)")
    comp.add_argument("--image", metavar="REF", help="component image (default: $KFP_RAI_IMAGE or the release image)")
    comp.set_defaults(func=cmd_compile)

    sub_ = sub.add_parser("submit", help="start a run on a Kubeflow Pipelines cluster")
    _remote_options(sub_)
    sub_.add_argument("--wait", action="store_true", help="wait for the run to finish; exit 1 unless it succeeded")
    sub_.set_defaults(func=cmd_submit)

    sched = sub.add_parser("schedule", help="create a recurring run (KFP cron: 6 fields, seconds first)")
    _remote_options(sched)
    sched.add_argument("--cron", required=True, help="e.g. '0 0 3 * * *' = every day at 03:00")
    sched.add_argument("--name", help="recurring run name")
    sched.set_defaults(func=cmd_schedule)

    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--state-dir", default="/tmp/kfp-rai/state", help="kill-switch state (default: /tmp/kfp-rai/state)"
    )
    srv = sub.add_parser("serve", parents=[state], help="serve a registered model over HTTP, with an audit log")
    srv.add_argument(
        "--model-uri", required=True, help="registry version directory or URI, e.g. registry/adult-income/1"
    )
    srv.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    srv.add_argument("--port", type=int, default=8080)
    srv.add_argument("--audit-log", default="/tmp/kfp-rai/audit.jsonl", help="append-only, hash-chained log")
    srv.set_defaults(func=cmd_serve)
    dis = sub.add_parser("disable", parents=[state], help="kill switch: refuse every prediction until enabled")
    dis.add_argument("--reason", required=True, help="why (recorded, shown to callers)")
    dis.set_defaults(func=cmd_disable)
    ena = sub.add_parser("enable", parents=[state], help="lift the kill switch")
    ena.set_defaults(func=cmd_enable)
    aud = sub.add_parser("audit-verify", help="check an audit log's hash chain")
    aud.add_argument("log")
    aud.set_defaults(func=cmd_audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RAIError as exc:
        return _fail(str(exc))
    except OSError as exc:  # unwritable or missing directories, a file where a directory should be
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))


if __name__ == "__main__":
    sys.exit(main())
