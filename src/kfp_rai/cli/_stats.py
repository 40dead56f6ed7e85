"""``kfp-rai drift`` and ``kfp-rai fairness``: the refresh and validation stages' statistics,
verdicts and reports on data of any size, from one streamed pass, without a pipeline.

Exit codes: 0 when the verdict is passed, 1 when it is not (drift found, a fairness limit broken, or
too little data to judge), 2 on bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from kfp_rai.core.files import atomic_write_text, sha256_bytes, sha256_file
from kfp_rai.core.report import Report, Subject
from kfp_rai.core.verdict import GateStatus
from kfp_rai.errors import DataValidationError, InvalidParameterError
from kfp_rai.policy import Policy


def add_stats_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    drift = sub.add_parser(
        "drift",
        help="drift of current data against a reference (data or stored summaries), in one streamed pass",
        description="Exit 0: no drift; 1: drift found or too few rows to judge; 2: bad input.",
    )
    drift.add_argument(
        "--reference",
        required=True,
        metavar="REF",
        help="reference data (.parquet, .csv, a directory of parquet, bundled:adult) or a stored summary (.json)",
    )
    drift.add_argument("--current", required=True, metavar="CUR", help="current data: a file or a partition directory")
    drift.add_argument(
        "--columns", nargs="+", action="extend", metavar="COL", help="columns to compare (default: all they share)"
    )
    drift.add_argument(
        "--identifier", nargs="+", action="extend", default=[], metavar="COL", help="per-row id columns, never compared"
    )
    drift.add_argument(
        "--save-reference", metavar="FILE", help="also write the reference's summary (JSON) to reuse as --reference"
    )
    _common(drift)
    drift.set_defaults(func=cmd_drift)

    fair = sub.add_parser(
        "fairness",
        help="per-group performance and fairness of a scored data set, with bootstrap intervals and the gate",
        description="Exit 0: every limit met; 1: a limit broken or a group too small to judge; 2: bad input.",
    )
    fair.add_argument("--data", required=True, metavar="SCORED", help="scored data: a file or a partition directory")
    fair.add_argument("--target", required=True, metavar="COL", help="the true label")
    fair.add_argument("--prediction", required=True, metavar="COL", help="the model's predicted label")
    fair.add_argument(
        "--score",
        metavar="COL",
        help="the predicted probability of the positive label (without it ROC AUC cannot be judged: exit 1)",
    )
    fair.add_argument(
        "--sensitive",
        required=True,
        nargs="+",
        action="extend",  # --sensitive sex --sensitive race, as kfp-rai run takes it: both, never the last only
        metavar="COL",
        help="sensitive attribute columns",
    )
    fair.add_argument(
        "--positive-label", metavar="LABEL", help="the positive label when target and prediction are text (else 0/1)"
    )
    fair.add_argument("--n-boot", type=int, metavar="N", help="bootstrap resamples (default: the policy's)")
    fair.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    _common(fair)
    fair.set_defaults(func=cmd_fairness)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", metavar="FILE", help="a kfp-rai policy (YAML); default: the built-in policy")
    parser.add_argument("--output", metavar="FILE", help="write the JSON report here (default: standard output)")
    parser.add_argument("--html", metavar="FILE", help="also write the report as a self-contained HTML page")
    parser.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown")


def _policy(args: argparse.Namespace) -> Policy:
    return Policy.load(args.policy) if args.policy else Policy()


def cmd_drift(args: argparse.Namespace) -> int:
    from kfp_rai.refresh import detect_drift, reference_summary
    from kfp_rai.stats.summary import DataSummary

    policy = _policy(args)
    reference: Any = args.reference
    identifiers = list(args.identifier)
    if str(args.reference).lower().endswith(".json"):
        reference = DataSummary.from_dict(_read_json(Path(args.reference)))
    else:  # its categories and ranges reach the report: screened first, under the policy's decisions
        identifiers += _screened(args.reference, args.columns, identifiers, policy)
    _screened_names(args.current)
    if args.save_reference and not isinstance(reference, DataSummary):
        reference = reference_summary(
            args.reference, columns=args.columns, policy=policy.drift, identifier_columns=identifiers
        )
    if args.save_reference:
        if not isinstance(reference, DataSummary):
            raise InvalidParameterError("--save-reference needs reference data, not a stored summary")
        atomic_write_text(args.save_reference, json.dumps(reference.to_dict()))
    report = detect_drift(
        reference, args.current, columns=args.columns, policy=policy.drift, identifier_columns=identifiers
    )
    hashes = {"reference": _data_hash(args.reference), "current": _data_hash(args.current)}
    return _emit(report, Subject(policy_sha256=policy.sha256, data_sha256=hashes), args)


def cmd_fairness(args: argparse.Namespace) -> int:
    from kfp_rai.core.params import check_seed
    from kfp_rai.validation._scored import ScoredColumns, scored_fairness

    check_seed(args.seed, "--seed")
    policy = _policy(args)
    if args.n_boot is not None:
        if args.n_boot < 0:
            raise InvalidParameterError(f"--n-boot must be 0 or more, got {args.n_boot}")
        policy = dataclasses.replace(
            policy, validation=dataclasses.replace(policy.validation, bootstrap_samples=args.n_boot)
        )
    columns = ScoredColumns(args.target, args.prediction, tuple(args.sensitive), args.score, args.positive_label)
    screen_scored(args.data, columns, policy)  # group labels and classes reach the report
    report = scored_fairness(args.data, columns, policy.validation, seed=args.seed)
    subject = Subject(policy_sha256=policy.sha256, data_sha256={"scored": _data_hash(args.data)})
    return _emit(report, subject, args, title="Fairness of scored predictions")


def _screened(source: str, columns: list[str] | None, identifiers: list[str], policy: Policy) -> list[str]:
    """Screen reference data for personal data under the policy's ``privacy.columns``; return the
    columns decided ``drop`` or ``pseudonymize``: never compared, their values never reported."""
    from kfp_rai.discovery import screen_stream
    from kfp_rai.stats.stream import open_batches

    data = open_batches(source)
    names = list(data.schema.names)  # a column asked for that is not there is refused by the drift check
    chosen = [c for c in columns if c in names] if columns else [c for c in names if c not in set(identifiers)]
    plan = screen_stream(data, chosen, decisions=policy.privacy.decisions)
    left_out = [*plan.drop, *plan.pseudonymize]
    if columns and (asked := sorted(set(columns) & set(left_out))):
        raise InvalidParameterError(
            f"--columns names {asked}, personal data the policy drops or pseudonymizes: it is never compared"
        )
    return left_out


def _screened_names(source: str) -> None:
    """A current data set's column names reach the report (a column the reference lacks): screen them."""
    from kfp_rai.discovery import screen_stream
    from kfp_rai.stats.stream import open_batches

    screen_stream(open_batches(source), [])


def screen_scored(source: Any, columns: Any, policy: Policy) -> None:
    """The target, prediction and sensitive columns of scored data: their values are the report's
    classes and groups, so personal data in them is refused (no decision can keep it readable)."""
    from kfp_rai.discovery import screen_stream
    from kfp_rai.stats.stream import open_batches

    used = list(dict.fromkeys([columns.target, columns.prediction, *columns.sensitive]))
    data = open_batches(source)
    data.require(used, "scored data")
    screen_stream(data, used, decisions=policy.privacy.decisions, protected=used)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataValidationError(f"summary not found: {path}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path} is not JSON: {exc}") from exc


def _data_hash(source: str) -> str:
    """sha256 of a data file; of a directory, of its files' names and hashes; a bundled name as is."""
    path = Path(source)
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        listing = "".join(f"{p.relative_to(path)}\0{sha256_file(p)}\n" for p in sorted(path.rglob("*")) if p.is_file())
        return sha256_bytes(listing.encode("utf-8"))
    return source


def _emit(report: Report, subject: Subject, args: argparse.Namespace, title: str | None = None) -> int:
    data = report.to_dict(subject)
    text = json.dumps(data, indent=2, default=str)
    if args.output:
        atomic_write_text(args.output, text + "\n")
    else:
        print(text)
    if args.html:
        atomic_write_text(args.html, report.to_html(subject, title))
    if args.markdown:
        atomic_write_text(args.markdown, report.to_markdown(subject, title))
    verdict = report.verdict
    if args.output:  # the JSON went to the file: say the verdict here
        print(f"{verdict.status.value}: {verdict.reason}")
    return 0 if verdict.status is GateStatus.PASSED else 1
