"""`kfp-rai run`: check every input, run the pipeline with kfp.local in a child process, then turn
its outputs into a run directory with run.json, index.html and a summary on the terminal.
``--runner docker`` runs every task in the kfp-rai image (:mod:`kfp_rai.pipelines.docker`)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess  # nosec B404  # runs our own pipeline runner, nothing a user typed
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kfp_rai._version import __version__
from kfp_rai.cli._progress import error_from_log, follow, print_summary
from kfp_rai.core.clock import utc_now
from kfp_rai.core.signing import SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV, ensure_local_keys
from kfp_rai.errors import RAIError

EXIT_OK, EXIT_FAILED = 0, 1
DEFAULT_DATA, DEFAULT_CURRENT = "bundled:adult", "bundled:adult-test"


def _absolute(value: str) -> str:
    return value if value.startswith("bundled:") or "://" in value else str(Path(value).expanduser().resolve())


_LIFECYCLE_ONLY = ("current", "target", "positive_label", "sensitive", "reviewer", "model_name", "intended_use",
                   "test_size", "pseudonymize", "deploy")  # fmt: skip
_REFRESH_ONLY = ("model", "alias", "notify_url", "labels", "audit_log")


def _refuse_others(args: argparse.Namespace, names: tuple[str, ...], pipeline: str) -> None:
    """No option a user gave is silently ignored: one that does not apply to this pipeline is refused."""
    given = [n for n in names if getattr(args, n, None) not in (None, False, [])]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise RAIError(f"{flags} do(es) not apply to kfp-rai run {pipeline} (see kfp-rai run --help)")


def docker_image(args: argparse.Namespace) -> str | None:
    """With ``--runner docker``, the image every task runs in, once a Docker engine answers and holds
    it (otherwise one line naming the command that builds it); None for the subprocess runner."""
    runner, image = getattr(args, "runner", "subprocess"), getattr(args, "image", None)
    if runner != "docker":
        if image:
            raise RAIError("--image applies to --runner docker only (the subprocess runner runs this Python)")
        return None
    from kfp_rai._image import IMAGE
    from kfp_rai.pipelines.docker import check_engine

    image = image or IMAGE
    check_engine(image)
    return image


def preflight(args: argparse.Namespace) -> dict[str, Any]:
    """Check every input before anything runs; return the pipeline arguments."""
    from kfp_rai.core.params import check_seed

    check_seed(args.seed, "--seed")
    if args.pipeline == "refresh":
        _refuse_others(args, _LIFECYCLE_ONLY, "refresh")
        return preflight_refresh(args)
    _refuse_others(args, _REFRESH_ONLY, "lifecycle")
    args.target = args.target or "income"
    args.positive_label = args.positive_label or ">50K"
    args.test_size = 0.3 if args.test_size is None else args.test_size
    return preflight_lifecycle(args)


def _human_texts(args: argparse.Namespace) -> dict[str, str]:
    """The human-written files given, checked and read (empty: the pipeline's default)."""
    from kfp_rai.discovery import CollectionPlan, ReferencePopulation
    from kfp_rai.policy import Policy

    out = {"policy": "", "reference_population": "", "collection_plan": ""}
    for key, flag, parse in (
        ("policy", args.policy, Policy.load),
        ("reference_population", args.reference_population, ReferencePopulation.load),
        ("collection_plan", args.collection_plan, CollectionPlan.load),
    ):
        if flag:
            parse(flag)
            out[key] = Path(flag).read_text(encoding="utf-8")
    return out


def preflight_refresh(args: argparse.Namespace) -> dict[str, Any]:
    """`kfp-rai run refresh`: the registry holds the model, its alias names a version that verifies,
    the current data can be read; every file given is valid."""
    from kfp_rai.production import ModelRegistry, validate_model_name
    from kfp_rai.refresh import resolve_champion
    from kfp_rai.refresh._monitor import is_traffic
    from kfp_rai.stats.stream import open_batches

    if not args.model:
        raise RAIError("kfp-rai run refresh needs the model to refresh: --model NAME (see kfp-rai models list)")
    validate_model_name(args.model)
    registry = Path(args.registry).expanduser().resolve()
    if not (registry / args.model).is_dir():
        raise RAIError(f"--registry {registry} holds no model {args.model!r}: register one with kfp-rai run first")
    champion = resolve_champion(ModelRegistry(str(registry)), args.model, alias=args.alias or "production")
    data = args.data or (DEFAULT_CURRENT if args.model == "adult-income" else None)
    if data is None:
        raise RAIError("kfp-rai run refresh needs the current data: --data FILE (a .csv/.parquet or a directory)")
    data = _absolute(data)
    if is_traffic(data):
        from kfp_rai.refresh._traffic import read_windows
        from kfp_rai.serving import audit_key_from_env

        key = audit_key_from_env()
        if key is None:
            raise RAIError("--data is serving's traffic: set KFP_RAI_AUDIT_KEY_FILE to the audit key it was keyed with")
        read_windows(Path(data), key, str(champion.meta["sha256"]))  # verified before anything runs
        if args.labels and not args.audit_log:
            raise RAIError("--labels are joined with the scores in serving's audit log: give --audit-log FILE too")
    else:
        if args.labels or args.audit_log:
            raise RAIError("--labels and --audit-log go with serving's traffic directory as --data")
        current = open_batches(data)
        features = [f for f in champion.meta["features"] if f not in current.schema.names]
        if features:
            raise RAIError(f"--data {data}: lacks the model's inputs {features}: the champion cannot score it")
    texts = _human_texts(args)
    return {
        "model_name": args.model,
        "current_data": data,
        "registry_uri": str(registry),
        "alias": args.alias or "production",
        "version": "",
        **texts,
        "seed": args.seed,
        "launched_by": launched_by(args.launched_by),
        "notify_url": args.notify_url or "",
        "fail_when_blocked": args.fail_when_blocked,
        "labels": _absolute(args.labels) if args.labels else "",
        "audit_log": _absolute(args.audit_log) if args.audit_log else "",
    }


def preflight_lifecycle(args: argparse.Namespace) -> dict[str, Any]:
    """`kfp-rai run [lifecycle]`: check every input before anything runs; return the pipeline arguments."""
    from kfp_rai.core.bundled import default_intended_use, default_model_name
    from kfp_rai.core.tables import read_table
    from kfp_rai.discovery import CollectionPlan, ReferencePopulation, hmac_key_from_env, prepare_dataset
    from kfp_rai.policy import Policy
    from kfp_rai.production import validate_model_name
    from kfp_rai.training import feature_columns
    from kfp_rai.validation import ReviewerFile

    if not 0.0 < args.test_size < 1.0:
        raise RAIError(f"--test-size must be between 0 and 1 (the held-out share), got {args.test_size}")
    data = args.data or DEFAULT_DATA
    current = args.current or (DEFAULT_CURRENT if args.data is None else data)
    model_name = validate_model_name(args.model_name or default_model_name(data))
    sensitive = args.sensitive or ["sex", "race"]
    pseudonymize = args.pseudonymize or []
    repeated = sorted({c for c in pseudonymize if pseudonymize.count(c) > 1})
    if repeated:
        raise RAIError(f"--pseudonymize names {repeated} more than once")
    policy = Policy.load(args.policy) if args.policy else Policy()  # the pipeline gets the text: runs anywhere
    policy_text = Path(args.policy).read_text(encoding="utf-8") if args.policy else ""
    decisions = {**policy.privacy.decisions, **dict.fromkeys(pseudonymize, "pseudonymize")}
    to_pseudonymize = [c for c, d in decisions.items() if d == "pseudonymize"]
    key = hmac_key_from_env() if to_pseudonymize else None
    for label, source in (("--data", data), ("--current", current)):
        try:
            df, _, plan = prepare_dataset(
                read_table(source, text_columns=to_pseudonymize),
                target=args.target,
                positive_label=args.positive_label,
                sensitive_features=sensitive,
                decisions=decisions,
                key=key,
            )
            feature_columns(
                df,
                target=args.target,
                sensitive_features=sensitive,
                policy=policy.training,
                identifier_columns=plan.pseudonymize,
            )
        except RAIError as exc:
            raise type(exc)(f"{label} {source}: {exc}") from exc
    reference_text = ""
    if args.reference_population:
        ReferencePopulation.load(args.reference_population)
        reference_text = Path(args.reference_population).read_text(encoding="utf-8")
    reviewer_text = ""
    if args.reviewer:
        ReviewerFile.load(args.reviewer)
        reviewer_text = Path(args.reviewer).read_text(encoding="utf-8")
    plan_text = ""
    if args.collection_plan:
        CollectionPlan.load(args.collection_plan)
        plan_text = Path(args.collection_plan).read_text(encoding="utf-8")
    registry = Path(args.registry).expanduser().resolve()
    nearest = next(p for p in (registry, *registry.parents) if p.exists())
    if not nearest.is_dir():
        raise RAIError(f"--registry {registry}: {nearest} is a file, not a directory")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise RAIError(f"--registry {registry}: {nearest} is not writable by this user")
    if (registry / model_name).is_dir():  # a tampered history stops the run before anything is trained
        from kfp_rai.production import ModelRegistry, read_state

        read_state(ModelRegistry(str(registry)), model_name)
    return {
        "data": _absolute(data),
        "current_data": _absolute(current),
        "target": args.target,
        "positive_label": args.positive_label,
        "sensitive_features": sensitive,
        "reference_population": reference_text,
        "collection_plan": plan_text,
        "policy": policy_text,
        "reviewer": reviewer_text,
        "model_name": model_name,
        "intended_use": args.intended_use or default_intended_use(data),
        "registry_uri": str(registry),
        "test_size": args.test_size,
        "seed": args.seed,
        "deploy": args.deploy,
        "pseudonymize": pseudonymize,
        "launched_by": launched_by(args.launched_by),
        "fail_when_blocked": args.fail_when_blocked,
    }


def launched_by(given: str | None) -> str:
    """Who launches the run: ``--launched-by``, else the operating-system user (recorded on the
    registration; separation of duties refuses that person's approval of the version)."""
    from kfp_rai.production._events import actor

    name = (given if given is not None else actor()["os_user"]).strip()
    if not name or len(name) > 200:
        raise RAIError("--launched-by must name who launches the run (at most 200 characters)")
    return name


def run_dir_for(args: argparse.Namespace) -> Path:
    """The run directory: ``--output`` if new or empty, else ``runs/<timestamp>-<pipeline>``."""
    if args.output:
        run_dir = Path(args.output).expanduser().resolve()
        if run_dir.exists() and not run_dir.is_dir():
            raise RAIError(f"--output {run_dir} is a file: choose a new or empty directory")
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RAIError(f"--output {run_dir} already holds files: choose a new or empty directory")
        return run_dir
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path("runs").resolve() / f"{stamp}-{args.pipeline}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = Path("runs").resolve() / f"{stamp}-{args.pipeline}-{n}"
    return run_dir


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Received:
    name = "signal"


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_Received]:
    """SIGINT and SIGTERM raise :class:`_Interrupted` in the main thread while the pipeline runs."""
    received = _Received()

    def handler(signum: int, frame: object) -> None:
        received.name = signal.Signals(signum).name
        raise _Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _stop_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop the pipeline's whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # tasks the leader did not take down with it
        os.killpg(process.pid, signal.SIGKILL)


_SCRATCH_PREFIX, _OWNER_FILE = "kfp-rai-run-", "owner.pid"


def _runner_death(code: int | None) -> str:
    how = f"was killed by {signal.Signals(-code).name}" if code and code < 0 else f"exited with code {code}"
    return f"the local pipeline runner {how} before the pipeline finished; its tasks were stopped with it"


def _sweep_stale_scratch() -> None:
    """Remove scratch directories of earlier runs that were killed (SIGKILL leaves no chance to
    clean up): ours, marked with an owner pid that no longer runs. They hold data and models."""
    for scratch in Path(tempfile.gettempdir()).glob(f"{_SCRATCH_PREFIX}*"):
        try:
            if scratch.stat().st_uid != os.getuid():
                continue
            pid = int((scratch / _OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(scratch, ignore_errors=True)
        except PermissionError:
            continue


def cmd_run(args: argparse.Namespace) -> int:
    from kfp_rai.core.files import write_json
    from kfp_rai.pipelines.run_index import write_index
    from kfp_rai.pipelines.run_record import build_run_record, collect_outputs, validate_run_record
    from kfp_rai.pipelines.tasks import nested_tasks

    arguments = preflight(args)
    image = docker_image(args)
    run_dir = run_dir_for(args)
    nested = nested_tasks(args.pipeline)  # which task is a refresh's challenger (kfp numbers them arbitrarily)
    if not (os.environ.get(SIGNING_KEY_ENV) or os.environ.get(SIGNING_KEY_FILE_ENV)):
        keys, created = ensure_local_keys()
        if created:
            print(f"kfp-rai: created a signing key pair in {keys} (first use): models and registry versions are signed")
    docker: dict[str, Any] | None = None
    if image is not None:
        import secrets

        from kfp_rai.pipelines.docker import task_settings

        docker = task_settings(arguments, image=image, run_id=f"{os.getpid()}-{secrets.token_hex(6)}")
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "logs" / "kfp-local.log"
    started = utc_now()
    if not args.quiet:
        where = f"kfp.local, every task in {image}" if image else "kfp.local"
        print(f"kfp-rai {__version__}: running the {args.pipeline} pipeline locally ({where}) into {run_dir}")
    _sweep_stale_scratch()
    with tempfile.TemporaryDirectory(prefix=_SCRATCH_PREFIX) as scratch:
        Path(scratch, _OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")
        spec = {
            "name": args.pipeline,
            "arguments": arguments,
            "pipeline_root": str(Path(scratch) / "outputs"),
            "result": str(Path(scratch) / "result.json"),
            "docker": docker,
        }
        Path(scratch, "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if image is not None:
            env["KFP_RAI_IMAGE"] = image  # the components name the image the tasks run in
        with open(log_path, "wb") as log, _stop_on_signals() as stopped:
            # Its own process group: the pipeline and every task it starts stop together.
            process = subprocess.Popen(  # nosec B603  # this interpreter, our module, a path we wrote; no shell
                [sys.executable, "-m", "kfp_rai.pipelines.local", str(Path(scratch, "spec.json"))],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=scratch,
                start_new_session=True,
            )
            try:
                followed = follow(process, log_path, quiet=args.quiet, nested=nested)
                with contextlib.suppress(ProcessLookupError):  # the runner died (even by SIGKILL): its tasks too
                    os.killpg(process.pid, signal.SIGKILL)
            except _Interrupted as signal_:
                _stop_group(process)
                print(
                    f"kfp-rai: interrupted ({stopped.name}): the pipeline and all its tasks were stopped, nothing "
                    f"after them ran or registered; the log so far is in {log_path}",
                    file=sys.stderr,
                )
                return 128 + signal_.signum
            finally:
                if docker is not None:  # task containers are no process of the group: removed by their label
                    from kfp_rai.pipelines.docker import remove_containers

                    remove_containers(docker["run_id"])
        result_path = Path(spec["result"])
        result = (
            json.loads(result_path.read_text())
            if result_path.is_file()
            else {"status": "failed", "error": _runner_death(process.returncode), "pipeline_dir": None}
        )
        failed_task, message = error_from_log(followed.lines) if result["status"] != "succeeded" else (None, None)
        pipeline_dir = result.get("pipeline_dir")
        nested = frozenset(result.get("nested") or nested)  # as the runner built the pipeline it ran
        tasks = collect_outputs(Path(pipeline_dir), run_dir, nested) if pipeline_dir else {}
    shown_arguments = {
        k: v for k, v in arguments.items() if k not in ("policy", "reference_population", "collection_plan", "reviewer")
    }
    if args.pipeline == "refresh":
        champion = "(the champion's own)"
        shown_arguments.update(
            policy=args.policy or champion,
            reference_population=args.reference_population or champion,
            collection_plan=args.collection_plan or champion,
        )
    else:
        shown_arguments["reviewer"] = args.reviewer or "(none)"
        shown_arguments["policy"] = args.policy or "(default policy)"
        shown_arguments["reference_population"] = args.reference_population or "(bundled US Census 2000)"
        shown_arguments["collection_plan"] = args.collection_plan or "(the bundled data's own, else none)"
    record = build_run_record(
        run_dir,
        tasks,
        pipeline=args.pipeline,
        status=result["status"],
        error=message or result.get("error"),
        failed_task=failed_task,
        arguments=shown_arguments,
        started=started,
        finished=utc_now(),
        task_seconds=followed.seconds,
        nested=nested,
    )
    validate_run_record(record)
    write_json(run_dir / "run.json", record, sort_keys=False)
    write_index(record, run_dir)
    print_summary(record, run_dir)
    if result["status"] != "succeeded":
        print(f"kfp-rai: error: {record['error']} (full log: {log_path})", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
