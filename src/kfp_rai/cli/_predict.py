"""`kfp-rai predict`: score a data file with a verified, approved registry version (batch scoring),
with the server's input checks; scores and labels out, identifiers only as pseudonyms."""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp_rai.cli._serving import add_version_arguments
from kfp_rai.errors import RAIError

EXIT_OK = 0


def cmd_predict(args: argparse.Namespace) -> int:
    from kfp_rai.core.files import atomic_path
    from kfp_rai.core.tables import read_table, write_table
    from kfp_rai.discovery import check_key, hmac_key_from_env
    from kfp_rai.production import servable_version
    from kfp_rai.serving._batch import score_table
    from kfp_rai.serving._service import load_served_model

    output = Path(args.output)
    if output.suffix not in (".parquet", ".pq", ".csv"):
        raise RAIError(f"--output {output}: name a .parquet or .csv file")
    if output.exists() and not args.overwrite:
        raise RAIError(f"--output {output} exists: choose a new file (or --overwrite)")
    if args.version and args.alias:
        raise RAIError("give --alias or --version, not both")
    found = servable_version(
        model_uri=args.model_uri, registry=args.registry, name=args.model, ref=args.version or args.alias
    )
    served = load_served_model(found.uri)  # the signature is verified before anything is deserialized
    problem = served.unservable()
    if problem:
        raise RAIError(f"refusing to score with {found.uri}: {problem}")
    name = f"{served.meta.get('name')} version {served.meta.get('version')}"
    if found.approval is None and not args.allow_unapproved:
        raise RAIError(
            f"{name} is not approved: scores that decide anything come from an approved version (kfp-rai models "
            "approve); to evaluate a candidate: --allow-unapproved"
        )
    key = hmac_key_from_env()
    text = [c for c in (args.id, *(args.keep or ())) if c]  # identifiers and labels read as text
    df = read_table(args.data, text_columns=text)
    scored = score_table(
        served.estimator,
        served.meta,
        df,
        keep=list(dict.fromkeys(args.keep or ())),
        id_column=args.id,
        hmac_key=check_key(key) if key is not None else None,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".csv":
        with atomic_path(output) as tmp:
            scored.table.to_csv(tmp, index=False)
    else:
        write_table(scored.table, output)
    print(
        f"scored {scored.rows} rows with {name} (sha256 {str(served.meta.get('sha256'))[:12]}…"
        f"{'' if found.approval else ', NOT APPROVED'}): {scored.positives} predicted {scored.positive_label!r}, "
        f"{scored.flagged} with inputs unlike the training data -> {output}"
    )
    return EXIT_OK


def add_predict_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pred = sub.add_parser(
        "predict",
        help="score a data file with a registered, approved version (batch scoring, the server's input checks)",
        description="Writes probability, label (the data's own words) and alerts per row, plus the columns kept "
        "with --keep (screened for personal data) and --id as its HMAC pseudonym. Exit 0: scored; 2: bad input.",
    )
    add_version_arguments(pred, "score")
    pred.add_argument("--data", required=True, metavar="FILE", help="the rows to score (.csv or .parquet)")
    pred.add_argument("--output", required=True, metavar="FILE", help="where the scores go (.parquet or .csv)")
    pred.add_argument(
        "--keep",
        action="append",
        metavar="COL",
        help="a column copied to the output, e.g. the true label and the sensitive attributes for kfp-rai fairness "
        "(repeatable; personal data is refused)",
    )
    pred.add_argument(
        "--id",
        metavar="COL",
        help="an identifier column, written as its HMAC pseudonym (needs KFP_RAI_HMAC_KEY[_FILE])",
    )
    pred.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    pred.add_argument(
        "--allow-unapproved", action="store_true", help="evaluate a candidate no person approved (said on the output)"
    )
    pred.set_defaults(func=cmd_predict)
