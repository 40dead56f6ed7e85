"""`kfp-rai models list|show|history|verify|approve|reject|promote|rollback|archive`: a person's
decisions about registered models, each verified before it acts and recorded as a signed event.

Exit codes: 0 done; 1 `models verify` found a problem; 2 bad input or a refused decision (one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kfp_rai.errors import RAIError

EXIT_OK, EXIT_FAILED = 0, 1


def _registry(args: argparse.Namespace) -> Any:
    from kfp_rai.production import ModelRegistry

    where = args.registry
    if "://" not in where and not Path(where).is_dir():
        raise RAIError(f"--registry {where}: no registry there (a directory `kfp-rai run` registered models into)")
    return ModelRegistry(where)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _table(columns: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(v) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _state(registry: Any, name: str) -> Any:
    from kfp_rai.production import read_state, validate_model_name

    validate_model_name(name)
    state = read_state(registry, name, remember=True)
    if not state.versions:
        raise RAIError(f"{registry.uri} holds no registered version of {name!r} (known: {registry.models() or 'none'})")
    return state


def cmd_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.name:
        listing = {args.name: _state(registry, args.name)}
    else:
        from kfp_rai.production import read_state

        listing = {name: read_state(registry, name, remember=True) for name in registry.models()}
        listing = {name: state for name, state in listing.items() if state.versions}  # none registered: nothing to show
    if args.json:
        _print_json(
            {
                name: {
                    "aliases": dict(state.aliases),
                    "versions": [
                        {**r.to_dict(), "aliases": list(state.aliases_of(v))} for v, r in state.versions.items()
                    ],
                }
                for name, state in listing.items()
            }
        )
        return EXIT_OK
    if not listing:
        print(f"{registry.uri} holds no models yet: `kfp-rai run` registers those whose gates pass")
    for name, state in listing.items():
        rows = [
            (
                r.version,
                r.registered.replace("+00:00", "Z"),
                r.gate_status,
                r.state,
                ", ".join(state.aliases_of(v)) or "—",
                (r.approved_by or "—") + (f" (approval waived: {r.waiver})" if r.waiver else ""),
            )
            for v, r in sorted(state.versions.items(), key=lambda kv: int(kv[0]))
        ]
        print(f"{name}  ({registry.uri})")
        print(_table(("version", "created (UTC)", "gates", "state", "aliases", "approved by"), rows))
        print()
    return EXIT_OK


def _history_rows(events: Any) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for e in events:
        extra = {
            "promoted": f"production {e.details.get('previous') or '—'} → {e.version}",
            "rolled_back": f"production {e.details.get('previous')} → {e.version}",
            "deployed": f"{'applied' if e.details.get('applied') else 'manifest written'}: {e.details.get('target')}",
        }.get(e.type, "")
        waiver = e.details.get("waiver") or e.details.get("separation_of_duties_waived")
        text = "; ".join(part for part in (extra, e.note, f"waived: {waiver}" if waiver else "") if part)
        rows.append((str(e.seq), e.time.replace("+00:00", "Z"), e.type, e.version, e.by, text or "—"))
    return rows


def cmd_history(args: argparse.Namespace) -> int:
    state = _state(_registry(args), args.name)
    if args.json:
        _print_json([e.to_dict() for e in state.events])
        return EXIT_OK
    print(_table(("#", "time (UTC)", "event", "version", "by", "what"), _history_rows(state.events)))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from kfp_rai.core.model_dir import CARD_JSON_FILE
    from kfp_rai.production import card_with_history, verified_version

    registry = _registry(args)
    state = _state(registry, args.name)
    record = state.resolve(args.ref)
    entry, files = verified_version(registry, record, args.name)
    card = json.loads(files[CARD_JSON_FILE]) if CARD_JSON_FILE in files else None
    history = state.history_of(record.version)
    if args.html:
        if card is None:
            raise RAIError(f"version {record.version} of {args.name} was registered without its card's JSON: no HTML")
        from kfp_rai.core.files import atomic_write_text

        atomic_write_text(args.html, card_with_history(card, history, entry.metadata))
    meta = entry.metadata
    lineage = {
        k: meta.get(k)
        for k in ("training_data_sha256", "policy_sha256", "kfp_rai_version", "run_id", "launched_by", "image")
        if meta.get(k) is not None
    }
    findings = (card or {}).get("findings", [])
    by_status: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        by_status.setdefault(f["status"], []).append(f)
    if args.json:
        _print_json(
            {
                **record.to_dict(),
                "aliases": list(state.aliases_of(record.version)),
                "uri": entry.uri,
                "card": {k: (card or {}).get(k) for k in ("status", "reason")},
                "findings": by_status,
                "lineage": lineage,
                "history": [e.to_dict() for e in history],
            }
        )
        return EXIT_OK
    aliases = ", ".join(state.aliases_of(record.version)) or "none"
    print(f"{args.name} version {record.version}: {record.state} (aliases: {aliases}) — {entry.uri}")
    print(f"model sha256 {record.model_sha256}")
    if card:
        print(f"card: {card.get('status')} — {card.get('reason')}")
        counts = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in sorted(by_status.items()))
        print(f"findings: {counts or 'none'}")
        for status in ("failed", "not_judged", "warning"):
            for f in by_status.get(status, []):
                print(f"  {status.replace('_', ' '):<10} {f['rule']} [{f['subject']}]: {f['message']}")
    print("lineage: " + ", ".join(f"{k} {v}" for k, v in lineage.items()))
    print("history:")
    print(_table(("#", "time (UTC)", "event", "version", "by", "what"), _history_rows(history)))
    if args.html:
        print(f"card with its history: {args.html}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from kfp_rai.production import verify_registry

    registry = _registry(args)
    report = verify_registry(registry, [args.name] if args.name else None)
    if args.json:
        _print_json(report)
    else:
        for line in report["checked"]:
            print(line)
        for line in report["notes"]:
            print(f"note: {line}")
        for line in report["problems"]:
            print(f"kfp-rai: verify: {line}", file=sys.stderr)
    return EXIT_FAILED if report["problems"] else EXIT_OK


def _said(event: Any, what: str) -> None:
    print(f"{event.model} version {event.version}: {what} by {event.by} (event {event.seq}, signed, {event.time})")


def cmd_approve(args: argparse.Namespace) -> int:
    from kfp_rai.production import approve

    # judged under the policy the version was judged under (stored and signed with it): whoever decides
    # cannot bring a laxer one
    event = approve(_registry(args), args.name, args.version, by=args.by, note=args.note)
    _said(event, "approved")
    print(f"next: kfp-rai models promote {event.model} {event.version} --by WHO --registry {args.registry}")
    return EXIT_OK


def cmd_reject(args: argparse.Namespace) -> int:
    from kfp_rai.production import reject

    _said(reject(_registry(args), args.name, args.version, by=args.by, note=args.note), "rejected")
    return EXIT_OK


def cmd_archive(args: argparse.Namespace) -> int:
    from kfp_rai.production import archive

    _said(archive(_registry(args), args.name, args.version, by=args.by, note=args.note), "archived")
    return EXIT_OK


def cmd_promote(args: argparse.Namespace) -> int:
    from kfp_rai.production import promote

    registry = _registry(args)
    event = promote(registry, args.name, args.version, by=args.by, note=args.note or "")
    previous = event.details.get("previous")
    _said(event, f"promoted to production (was {'version ' + previous if previous else 'nothing'})")
    if event.details.get("waiver"):
        print(f"approval waived by the policy: {event.details['waiver']}")
    return _deploy_if_asked(args, registry, event)


def cmd_rollback(args: argparse.Namespace) -> int:
    from kfp_rai.production import rollback

    registry = _registry(args)
    event = rollback(registry, args.name, by=args.by, note=args.note, to=args.to)
    _said(event, f"back in production (rolled back from version {event.details.get('previous')})")
    return _deploy_if_asked(args, registry, event)


def _deploy_if_asked(args: argparse.Namespace, registry: Any, event: Any) -> int:
    """With --deploy: apply the production version's InferenceService in a cluster, or write it to
    a file elsewhere; either way recorded as a `deployed` event."""
    if not args.deploy:
        print(f"serve it: kfp-rai serve --registry {args.registry} --model {event.model} --alias production")
        return EXIT_OK
    from kfp_rai.production import deploy_production

    result = deploy_production(
        registry,
        event.model,
        by=args.by,
        namespace=args.namespace,
        image=args.image,
        storage=args.storage_uri,
        manifest_path=args.manifest or f"inference-service-{event.model}-v{event.version}.yaml",
    )
    print(result.reason)
    return EXIT_OK


def add_models_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    models = sub.add_parser("models", help="registered models: list, show, approve, promote, roll back, verify")
    msub = models.add_subparsers(dest="models_command", required=True, parser_class=type(models))
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--registry", default="registry", metavar="DIR|URI", help="the registry (default: ./registry; s3://... too)"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    decision = argparse.ArgumentParser(add_help=False)
    decision.add_argument("--by", required=True, metavar="WHO", help="who takes this decision (recorded, signed)")

    def add(name: str, func: Any, help_: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = msub.add_parser(name, parents=[common, *parents], help=help_)
        parser.set_defaults(func=func)
        return parser

    lst = add("list", cmd_list, "every version with its gates, state, aliases and approver")
    lst.add_argument("name", nargs="?", help="one model (default: every model in the registry)")
    show = add("show", cmd_show, "one version: its card's verdict, findings by status, lineage, history")
    show.add_argument("name")
    show.add_argument("ref", metavar="VERSION|ALIAS", help="a version number, production or challenger")
    show.add_argument("--html", metavar="FILE", help="also write the card with its approvals and deployment history")
    hist = add("history", cmd_history, "every event of a model, oldest first")
    hist.add_argument("name")
    ver = add("verify", cmd_verify, "check every event's signature and link and every version's signature")
    ver.add_argument("name", nargs="?", help="one model (default: every model)")
    for name, func, help_ in (
        ("approve", cmd_approve, "a person approves a candidate (separation of duties per the policy)"),
        ("reject", cmd_reject, "a person rejects a version: it can never be promoted"),
        ("archive", cmd_archive, "retire a version that is not in production"),
    ):
        p = add(name, func, help_, decision)
        p.add_argument("name")
        p.add_argument("version")
        p.add_argument("--note", required=True, metavar="TEXT", help="why (recorded, signed)")
    deploy = argparse.ArgumentParser(add_help=False)
    deploy.add_argument(
        "--deploy",
        action="store_true",
        help="apply the production version's InferenceService (in a cluster), else write it to --manifest",
    )
    deploy.add_argument("--namespace", default="kfp-rai", help="namespace of the InferenceService (default: kfp-rai)")
    deploy.add_argument("--image", metavar="REF", help="serving image (default: $KFP_RAI_IMAGE or the release image)")
    deploy.add_argument("--storage-uri", metavar="URI", help="the version as the cluster fetches it (s3://, pvc://)")
    deploy.add_argument("--manifest", metavar="FILE", help="where to write the InferenceService outside a cluster")
    pro = add("promote", cmd_promote, "move the production alias to an approved version", decision, deploy)
    pro.add_argument("name")
    pro.add_argument("version")
    pro.add_argument("--note", metavar="TEXT", help="why (recorded, signed)")
    rb = add(
        "rollback", cmd_rollback, "move production back (default: to the previous production version)", decision, deploy
    )
    rb.add_argument("name")
    rb.add_argument("--to", metavar="VERSION", help="the version to return to (default: the previous production one)")
    rb.add_argument("--note", required=True, metavar="TEXT", help="why (recorded, signed)")
