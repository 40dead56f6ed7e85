"""`kfp-rai serve`, `disable`, `enable` and `audit verify|new-key`: the serving app and its controls."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from kfp_rai.errors import RAIError

EXIT_OK, EXIT_FAILED = 0, 1
_NO_AUDIT_KEY = (
    "serving needs an audit key to chain its records: set KFP_RAI_AUDIT_KEY_FILE to a key file (create one with "
    "`kfp-rai audit new-key FILE`) or KFP_RAI_AUDIT_KEY; for development only, --insecure-dev-audit"
)
_NO_TOKEN = (  # nosec B105 - a message naming the variables, not a password
    "predictions need a bearer token: set KFP_RAI_SERVING_TOKEN_FILE to a file holding a random token (or "
    "KFP_RAI_SERVING_TOKEN); for local development only, --insecure-no-auth"
)
_OPEN_WARNING = "kfp-rai: WARNING: --insecure-no-auth: anyone who can reach the port can use the model"
_DEV_WARNING = (
    "kfp-rai: WARNING: development mode: the audit log is keyed with a public key, so anyone can rewrite it "
    "undetected; never serve real requests like this"
)


def _audit_paths(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The log and its checkpoints; ``{start}`` in either path becomes this start's UTC time, so a
    server that always asks for a new log (a pod restarting on the same volume) keeps the old ones.
    An existing log keeps the checkpoints its first record names (None: use those)."""
    import datetime as dt

    from kfp_rai.serving import default_checkpoints, safe_state_dir

    start = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    state = safe_state_dir(args.state_dir)
    log = Path(args.audit_log.replace("{start}", start)) if args.audit_log else state / "audit" / "audit.jsonl"
    if args.audit_checkpoints:
        return log, Path(args.audit_checkpoints.replace("{start}", start))
    if log.exists() and not args.new_audit_log:
        return log, None
    return log, state / "checkpoints" / default_checkpoints(log).name


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def _non_negative(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 0")
    return int(value)


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0-65535)")
    return int(value)


def cmd_serve(args: argparse.Namespace) -> int:
    from kfp_rai.discovery import check_key, hmac_key_from_env
    from kfp_rai.serving import (
        DEVELOPMENT_KEY,
        AuditLog,
        ModelService,
        audit_key_from_env,
        index_for,
        load_served_model,
        safe_state_dir,
    )
    from kfp_rai.serving._gate import Limits, Tokens
    from kfp_rai.serving._kserve import Server

    key = hmac_key_from_env()
    if key is not None:
        check_key(key)  # the same rule as the pipeline: audit-log pseudonyms must be as strong
    audit_key = audit_key_from_env()
    if audit_key is None and not args.insecure_dev_audit:
        raise RAIError(_NO_AUDIT_KEY)
    tokens = Tokens.from_env()
    if tokens.predict is None and not args.insecure_no_auth:
        raise RAIError(_NO_TOKEN)
    from kfp_rai.production import servable_version

    if args.version and args.alias:
        raise RAIError("give --alias or --version, not both")
    found = servable_version(
        model_uri=args.model_uri, registry=args.registry, name=args.model, ref=args.version or args.alias
    )
    model_uri, approval = found.uri, found.approval
    if found.in_registry and approval is None and not args.allow_unapproved:
        raise RAIError(_unapproved(model_uri, "its registry records no approval of it"))
    served = load_served_model(model_uri)  # verified before the audit log is touched
    if approval is not None and (
        served.meta.get("sha256") != approval.model_sha256
        or served.meta.get("name") != approval.model
        or str(served.meta.get("version")) != approval.version
    ):  # the directory changed between the check and the load: serve nothing
        raise RAIError(
            f"refusing to serve {model_uri}: it holds {served.meta.get('name')} version {served.meta.get('version')}, "
            f"not version {approval.version} that was approved (the directory changed while it was being read)"
        )
    problem = served.unservable()
    if problem and not args.allow_unregistered:
        raise RAIError(f"refusing to serve {model_uri}: {problem} (for development only: --allow-unregistered)")
    if approval is None and not found.in_registry:
        approval = _approval_from_env(served.meta)
    unapproved = approval is None
    if unapproved and not args.allow_unapproved:
        name = f"{served.meta.get('name')} version {served.meta.get('version')}"
        raise RAIError(_unapproved(model_uri, f"{name} is not approved"))
    log, checkpoints = _audit_paths(args)
    # A container is stopped with SIGTERM: from the moment the log is opened, SIGTERM closes the
    # trail (a stop record, a final checkpoint) exactly as Ctrl-C does. While the server runs,
    # uvicorn takes both signals, shuts down gracefully and raises them again afterwards.
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.ExitStack() as cleanup:
        try:
            audit = AuditLog(
                log,
                key=audit_key or DEVELOPMENT_KEY,
                checkpoints=checkpoints,
                create=args.new_audit_log,
                index=index_for(safe_state_dir(args.state_dir)),  # which log is which, kept apart from the logs
            )
            cleanup.callback(audit.close)
            for flag, warning in (  # once nothing else can stop the start: an error stays one line
                (audit_key is None, _DEV_WARNING),
                (tokens.predict is None, _OPEN_WARNING),
                (bool(problem), f"kfp-rai: WARNING: serving a model the gates did not let through: {problem}"),
                (unapproved, "kfp-rai: WARNING: --allow-unapproved: serving a version no person approved"),
            ):
                if flag:
                    print(warning, file=sys.stderr, flush=True)
            service = ModelService(
                served,
                traffic=_traffic(args, served, audit_key or DEVELOPMENT_KEY),
                audit=audit,
                state_dir=args.state_dir,
                hmac_key=key,
                development=audit_key is None,
                unregistered=bool(problem),
                approval=None if approval is None else _approval_record(approval),
            )
            cleanup.callback(service.close)
            info = service.describe()

            def ready(port: int) -> None:
                base = f"http://{args.host}:{port}"
                print(
                    f"serving {info['name']} version {info['version']} (sha256 {info['sha256']}) on {base} "
                    f"(KServe V1 {base}/v1/models/{info['name']}:predict, V2 {base}/v2/models/{info['name']}/infer); "
                    f"audit log {audit.path} (verify: kfp-rai audit verify {audit.path})",
                    flush=True,
                )

            server = Server(
                service,
                host=args.host,
                port=args.port,
                tokens=tokens,
                limits=Limits(max_body_bytes=args.max_body_kb * 1024),
                on_ready=ready,
            )
            threading.Thread(target=service.warm_up, name="kfp-rai-warm-up", daemon=True).start()
            server.run()
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def _traffic(args: argparse.Namespace, served: Any, key: bytes) -> Any:
    """What the server saw, per window, counted over the version's reference bins and keyed like
    the audit trail (the refresh reads the directory); none for a version without a reference."""
    import json

    from kfp_rai.refresh._traffic import TrafficRecorder
    from kfp_rai.serving import safe_state_dir
    from kfp_rai.stats.summary import DataSummary

    if served.reference is None or args.traffic_window_minutes == 0:
        return None
    directory = Path(args.traffic_dir) if args.traffic_dir else safe_state_dir(args.state_dir) / "traffic"
    return TrafficRecorder(
        DataSummary.from_dict(json.loads(served.reference)),
        served.meta["features"],
        float(served.meta.get("decision_threshold", 0.5)),
        directory,
        key,
        served.meta,
        window_seconds=args.traffic_window_minutes * 60,
    )


def _unapproved(model_uri: str, why: str) -> str:
    return (
        f"refusing to serve {model_uri}: {why} (a person approves it with `kfp-rai models approve`, and serving "
        "follows `--registry DIR --model NAME --alias production`; for development only: --allow-unapproved)"
    )


def _approval_from_env(meta: dict[str, Any]) -> Any:
    import base64
    import binascii

    from kfp_rai.production import check_approval_event
    from kfp_rai.production._inference_service import APPROVAL_EVENT_ENV

    text = os.environ.get(APPROVAL_EVENT_ENV)
    if not text:
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise RAIError(f"{APPROVAL_EVENT_ENV} is not base64 text (the InferenceService's approval event)") from exc
    return check_approval_event(data, meta)


def _approval_record(event: Any) -> dict[str, Any]:
    return {k: getattr(event, k) for k in ("type", "seq", "by", "time", "version", "digest")}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _said(running: bool, state_dir: str | None) -> str:
    from kfp_rai.serving import safe_state_dir

    where = safe_state_dir(state_dir)
    if running:
        return f"a running server uses {where}: it takes effect on its next request and is recorded in its audit log"
    return f"no running server uses {where}: a server started with it will find the switch as set now"


def cmd_disable(args: argparse.Namespace) -> int:
    from kfp_rai.serving import disable

    running = disable(args.state_dir, args.reason)
    print(f"disabled: every prediction is refused (503); {_said(running, args.state_dir)}")
    return EXIT_OK


def cmd_enable(args: argparse.Namespace) -> int:
    from kfp_rai.serving import enable

    running = enable(args.state_dir)
    print(f"enabled; {_said(running, args.state_dir)}")
    return EXIT_OK


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from kfp_rai.serving import DEVELOPMENT_KEY, audit_key_from_env, default_state_dir, index_for, verify_audit_log

    key = audit_key_from_env()
    if key is None and not args.insecure_dev_audit:
        raise RAIError("verifying needs the audit key the log was written with: set KFP_RAI_AUDIT_KEY_FILE")
    if not Path(args.log).is_file():
        raise RAIError(f"no audit log at {args.log}: a missing log cannot be verified (was it moved or deleted?)")
    state = Path(args.state_dir) if args.state_dir else default_state_dir()
    index = index_for(state) if index_for(state).exists() else None
    check = verify_audit_log(args.log, key or DEVELOPMENT_KEY, args.checkpoints, index=index, log_id=args.log_id)
    print(f"{args.log}: {check.message}", file=sys.stdout if check.ok else sys.stderr)
    return EXIT_OK if check.ok else EXIT_FAILED


def cmd_audit_new_key(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.exists():
        raise RAIError(f"{path} exists: a key is never overwritten (the logs it keyed would become unverifiable)")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    print(f"wrote a random audit key to {path} (mode 600); export KFP_RAI_AUDIT_KEY_FILE={path}")
    return EXIT_OK


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log")
    parser.add_argument(
        "--checkpoints", metavar="FILE", help="the log's checkpoints (default: as the index, else the log, says)"
    )
    parser.add_argument(
        "--log-id", metavar="ID", help="the log id it must carry (default: what the state directory's index records)"
    )
    parser.add_argument(
        "--state-dir", metavar="DIR", help="whose index of logs to check against (default ~/.local/state/kfp-rai)"
    )
    parser.add_argument("--insecure-dev-audit", action="store_true", help="verify a development-mode log")


def add_version_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """Which registry version a command acts on: --model-uri, or --registry/--model with --alias or
    --version (resolved and verified by :func:`kfp_rai.production.servable_version`)."""
    parser.add_argument(
        "--model-uri", help="a registry version directory or URI, e.g. registry/adult-income/1 (or --registry/--model)"
    )
    parser.add_argument(
        "--registry", metavar="DIR|URI", help="the registry to resolve --model in (default: ./registry)"
    )
    parser.add_argument(
        "--model", metavar="NAME", help=f"{verb} with this model's --alias (default production) or --version"
    )
    parser.add_argument(
        "--alias", choices=["production", "challenger"], help="which alias of --model (default production)"
    )
    parser.add_argument("--version", metavar="N", help="a version of --model instead of an alias")


def add_serving_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--state-dir", help="kill-switch state, mode 0700 (default: $KFP_RAI_STATE_DIR or ~/.local/state/kfp-rai)"
    )
    srv = sub.add_parser(
        "serve", parents=[state], help="serve a registered model with KServe's model server, with an audit trail"
    )
    add_version_arguments(srv, "serve")
    srv.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 in a container)")
    srv.add_argument("--port", type=_port, default=8080, help="port (default 8080; 0: any free one)")
    srv.add_argument(
        "--audit-log",
        metavar="FILE",
        help="the audit log (default: <state dir>/audit/audit.jsonl); {start} in it becomes the start time",
    )
    srv.add_argument(
        "--audit-checkpoints",
        metavar="FILE",
        help="checkpoints of the log, kept apart from it (default: <state dir>/checkpoints/)",
    )
    srv.add_argument("--new-audit-log", action="store_true", help="start a new audit log (refused if one exists)")
    srv.add_argument(
        "--insecure-dev-audit", action="store_true", help="development only: key the audit log with a public key"
    )
    srv.add_argument(
        "--insecure-no-auth", action="store_true", help="development only: predictions without a bearer token"
    )
    srv.add_argument(
        "--allow-unregistered",
        action="store_true",
        help="development only: serve a model that is not a registry version whose gates passed",
    )
    srv.add_argument(
        "--traffic-dir",
        metavar="DIR",
        help="where to write what was served, per window, without raw values (default: <state dir>/traffic); "
        "kfp-rai run refresh --data DIR reads it",
    )
    srv.add_argument(
        "--traffic-window-minutes",
        type=_non_negative,
        default=60,
        help="minutes per traffic summary window (default 60; 0: write none)",
    )
    srv.add_argument(
        "--allow-unapproved",
        action="store_true",
        help="development only: serve a version no person approved (recorded in the audit trail)",
    )
    srv.add_argument(
        "--max-body-kb", type=_positive, default=1024, help="largest request body accepted, in KiB (default 1024)"
    )
    srv.set_defaults(func=cmd_serve)
    dis = sub.add_parser("disable", parents=[state], help="kill switch: refuse every prediction until enabled")
    dis.add_argument("--reason", required=True, help="why (recorded, shown to callers)")
    dis.set_defaults(func=cmd_disable)
    ena = sub.add_parser("enable", parents=[state], help="lift the kill switch")
    ena.set_defaults(func=cmd_enable)

    audit = sub.add_parser("audit", help="the audit trail: verify a log, create a key")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=type(audit))
    verify = audit_sub.add_parser("verify", help="check a log's keyed chain and its latest checkpoint")
    _verify_arguments(verify)
    verify.set_defaults(func=cmd_audit_verify)
    new_key = audit_sub.add_parser("new-key", help="write a random audit key to a new file (mode 600)")
    new_key.add_argument("file")
    new_key.set_defaults(func=cmd_audit_new_key)
    # The earlier spelling, kept working.
    old = sub.add_parser("audit-verify", help="same as `audit verify`")
    _verify_arguments(old)
    old.set_defaults(func=cmd_audit_verify)
