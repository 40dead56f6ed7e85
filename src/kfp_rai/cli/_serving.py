"""`kfp-rai serve`, `disable`, `enable` and `audit-verify`: the serving app and its controls."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kfp_rai.errors import RAIError

EXIT_OK, EXIT_FAILED = 0, 1
DEFAULT_STATE_DIR = "/tmp/kfp-rai/state"
DEFAULT_AUDIT_LOG = "/tmp/kfp-rai/audit.jsonl"


def cmd_serve(args: argparse.Namespace) -> int:
    from kfp_rai.discovery import check_key, hmac_key_from_env
    from kfp_rai.serving import ModelService, serve

    key = hmac_key_from_env()
    if key is not None:
        check_key(key)  # the same rule as the pipeline: audit-log pseudonyms must be as strong
    service = ModelService(args.model_uri, audit_log=args.audit_log, state_dir=args.state_dir, hmac_key=key)
    server = serve(service, args.host, args.port)
    info = service.describe()
    print(
        f"serving {info['name']} version {info['version']} (sha256 {info['sha256']}) on "
        f"http://{args.host}:{args.port} (audit log {args.audit_log})",
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
    from kfp_rai.serving import disable

    disable(args.state_dir, args.reason)
    print(f"disabled: every prediction from the server using {args.state_dir} is now refused (503)")
    return EXIT_OK


def cmd_enable(args: argparse.Namespace) -> int:
    from kfp_rai.serving import enable

    enable(args.state_dir)
    print("enabled")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from kfp_rai.serving import verify_audit_log

    if not Path(args.log).is_file():
        raise RAIError(f"no audit log at {args.log}: a missing log cannot be verified (was it deleted?)")
    ok, _, message = verify_audit_log(args.log)
    print(f"{args.log}: {message}", file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED


def add_serving_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, help=f"kill-switch state (default: {DEFAULT_STATE_DIR})"
    )
    srv = sub.add_parser("serve", parents=[state], help="serve a registered model over HTTP, with an audit log")
    srv.add_argument(
        "--model-uri", required=True, help="registry version directory or URI, e.g. registry/adult-income/1"
    )
    srv.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    srv.add_argument("--port", type=int, default=8080)
    srv.add_argument("--audit-log", default=DEFAULT_AUDIT_LOG, help="append-only, hash-chained log")
    srv.set_defaults(func=cmd_serve)
    dis = sub.add_parser("disable", parents=[state], help="kill switch: refuse every prediction until enabled")
    dis.add_argument("--reason", required=True, help="why (recorded, shown to callers)")
    dis.set_defaults(func=cmd_disable)
    ena = sub.add_parser("enable", parents=[state], help="lift the kill switch")
    ena.set_defaults(func=cmd_enable)
    aud = sub.add_parser("audit-verify", help="check an audit log's hash chain")
    aud.add_argument("log")
    aud.set_defaults(func=cmd_audit)
