"""Every bad input a user can give: one line on stderr and exit code 2 from the CLI, before anything
runs and with nothing written; a clear RAIError (never a KeyError or a traceback of ours) from the
component that takes the input. The same table is published as docs/bad-inputs.md:

    python tests/unit/test_bad_inputs.py --write-docs
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
GOOD = pd.DataFrame(
    {
        "income": [">50K", "<=50K"] * 20,
        "sex": ["Male", "Female"] * 20,
        "race": ["White", "White", "Black", "Black"] * 10,
        "hours": list(range(40)),
        "job": ["a", "b", "c", "d"] * 10,
    }
)
REF = (
    "source: s\nyear: 2000\nattributes:\n"
    "  sex: {shares: {Male: 0.5, Female: 0.5}}\n"
    "  race: {shares: {White: 0.5, Black: 0.5}}\n"
)

PLAN = (
    "title: t\npurpose: p\nsources: [{name: s}]\nowners: [{name: o, role: r}]\nlicence: CC0\n"
    "collection: {start: '2020-01-01', end: '2020-12-31', method: survey}\n"
    "expected_columns: [income, sex, race]\nsensitive_attributes: [sex, race]\n"
    "expected_populations: {sex: {groups: [Male, Female], source: s}}\nretention: one year\n"
)
REVIEWER = (
    "reviewer: J\nrole: validator\ndate: '2026-11-20'\ndata_sha256: " + "a" * 64 + "\n"
    "metrics: [{metric: accuracy, value: 0.8}]\n"
)


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


@dataclass(frozen=True)
class Case:
    """One bad input: what it is, the files it needs, how the CLI and a component receive it."""

    id: str
    what: str
    fragment: str
    files: dict[str, bytes | Callable[[Path], None]] = field(default_factory=dict)
    cli: tuple[str, ...] | None = None
    component: str | None = None  # "load" (data, privacy) or "check" (reference population, policy)
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ("run",)


def _truncated_gz(path: Path) -> None:
    data = gzip.compress(_csv(GOOD) * 50)
    path.write_bytes(data[: len(data) // 2])


def _unreadable_dir(path: Path) -> None:
    path.mkdir()


def _model_dir(metadata: object, sign: bool) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        import json

        from kfp_rai.core.signing import sign_model_dir

        path.mkdir()
        (path / "model.skops").write_bytes(b"not a model")
        (path / "metadata.json").write_text(json.dumps(metadata) if not isinstance(metadata, str) else metadata)
        if sign:
            sign_model_dir(path)

    return make


def _trained(path: Path) -> None:
    from dataclasses import asdict

    from kfp_rai.core.model_dir import save_model_dir
    from kfp_rai.training import train_model

    model, summary = train_model(GOOD, target="income", positive_label=">50K", sensitive_features=["sex", "race"])
    save_model_dir(model, path, {**asdict(summary), "name": "m", "version": "1"})


def _state(path: Path) -> None:
    path.mkdir(mode=0o700)


def _shared_state(path: Path) -> None:
    path.mkdir()
    os.chmod(path, 0o777)


def _corrupt_log(path: Path) -> None:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text("this line is not an audit record\n")


def _registry(*, approve: bool = False, tamper: bool = False) -> Callable[[Path], None]:
    """A registry holding version 1 of model m (gates passed, launched by ann), optionally approved
    by bob, optionally with its first event edited."""

    def make(path: Path) -> None:
        from kfp_rai.core.verdict import GateStatus, Verdict
        from kfp_rai.production import ModelRegistry
        from kfp_rai.production import approve as approve_version

        registry = ModelRegistry(str(path))
        verdict = Verdict(GateStatus.PASSED, "every gate passed")
        registry.register("m", model=b"model", model_card="# card", metadata={}, verdict=verdict, launched_by="ann")
        if approve:
            approve_version(registry, "m", "1", by="bob", note="fine")
        if tamper:
            event = path / "m" / "events" / "00000001.event"
            os.chmod(event, 0o644)
            event.write_bytes(event.read_bytes().replace(b'"by":"ann"', b'"by":"eve"'))

    return make


AUDIT = {"KFP_RAI_AUDIT_KEY": "audit-key-for-tests-0123456789abcdef"}
SERVE = {**AUDIT, "KFP_RAI_SERVING_TOKEN": "serving-token-for-tests-0123"}

CASES = [
    # data files
    Case(
        "missing-file",
        "a data file that does not exist",
        "data file not found",
        cli=("--data", "{dir}/nope.csv"),
        component="load",
    ),
    Case("empty-file", "an empty file", "is empty", {"d.csv": b""}, ("--data", "{d_csv}"), "load"),
    Case(
        "header-only",
        "a header and no rows",
        "holds no rows",
        {"d.csv": b"income,sex,race\n"},
        ("--data", "{d_csv}"),
        "load",
    ),
    Case(
        "too-wide",
        "a header of 200,000 columns and no rows",
        "has 200,000 columns, more than the 10,000 kfp-rai reads",
        {"d.csv": b",".join(b"c%d" % i for i in range(200_000)) + b"\n"},
        ("--data", "{d_csv}"),
        "load",
    ),
    Case(
        "unknown-format",
        "a file that is neither CSV nor parquet",
        "cannot tell the format",
        {"d.txt": b"a\n1\n"},
        ("--data", "{d_txt}"),
        "load",
    ),
    Case(
        "corrupt-parquet",
        "a .parquet file that is not parquet",
        "cannot read",
        {"d.parquet": b"not parquet"},
        ("--data", "{d_parquet}"),
        "load",
    ),
    Case(
        "truncated-gzip",
        "a truncated .csv.gz",
        "cannot read",
        {"d.csv.gz": _truncated_gz},
        ("--data", "{d_csv_gz}"),
        "load",
    ),
    Case(
        "not-utf8-csv",
        "a CSV that is not UTF-8 text",
        "cannot read",
        {"d.csv": "income,sex,race,job\n>50K,Male,White,Führer\n".encode("utf-16")},
        ("--data", "{d_csv}"),
        "load",
    ),
    Case(
        "repeated-column",
        "a column name that appears twice",
        "appear more than once",
        {"d.csv": b"income,sex,race,hours,hours\n>50K,Male,White,1,2\n"},
        ("--data", "{d_csv}"),
        "load",
    ),
    # labels and groups
    Case(
        "no-target",
        "a target column that is not in the data",
        "column 'label' (target) is not in the data",
        {"d.csv": _csv(GOOD)},
        ("--data", "{d_csv}", "--target", "label"),
        "load",
    ),
    Case(
        "no-sensitive",
        "a sensitive column that is not in the data",
        "column 'age' (sensitive feature)",
        {"d.csv": _csv(GOOD)},
        ("--data", "{d_csv}", "--sensitive", "age"),
        "load",
    ),
    Case(
        "one-class",
        "a target with a single value",
        "has a single value",
        {"d.csv": _csv(GOOD.assign(income="<=50K"))},
        ("--data", "{d_csv}"),
        "load",
    ),
    Case(
        "three-classes",
        "a target with three values",
        "has 3 distinct values",
        {"d.csv": _csv(GOOD.assign(income=["a", "b", ">50K", "b"] * 10))},
        ("--data", "{d_csv}"),
        "load",
    ),
    Case(
        "no-positive-label",
        "a positive label that never occurs",
        "positive label 'yes' does not occur",
        {"d.csv": _csv(GOOD)},
        ("--data", "{d_csv}", "--positive-label", "yes"),
        "load",
    ),
    Case(
        "missing-labels",
        "missing values in the target",
        "missing values: drop or label them",
        {"d.csv": _csv(GOOD.assign(income=[">50K", "<=50K", None, "<=50K"] * 10))},
        ("--data", "{d_csv}"),
        "load",
    ),
    Case(
        "sensitive-all-missing",
        "a sensitive column with no value at all",
        "holds only missing values",
        {"d.csv": _csv(GOOD.assign(race=None))},
        ("--data", "{d_csv}"),
        "load",
    ),
    Case(
        "sensitive-one-group",
        "a sensitive column with a single group",
        "holds a single group",
        {"d.csv": _csv(GOOD.assign(race="White"))},
        ("--data", "{d_csv}"),
        "load",
    ),
    Case(
        "infinite-number",
        "an infinite number in a feature",
        "infinite values in {'hours': 1}",
        {"d.csv": _csv(GOOD.assign(hours=[np.inf] + list(range(39))))},
        ("--data", "{d_csv}"),
        "load",
    ),
    Case(
        "all-missing-feature",
        "a feature column with no value at all",
        "hold only missing values",
        {"d.csv": _csv(GOOD.assign(job=None))},
        ("--data", "{d_csv}"),
    ),
    Case(
        "no-features",
        "no column left to learn from",
        "no feature columns are left",
        {"d.csv": _csv(GOOD[["income", "sex", "race"]])},
        ("--data", "{d_csv}"),
    ),
    # personal data
    Case(
        "undeclared-email",
        "an e-mail column nobody decided about",
        "personal data in contact (email: 40 of 40",
        {"d.csv": _csv(GOOD.assign(contact=[f"u{i}@example.org" for i in range(40)]))},
        ("--data", "{d_csv}"),
        "load",
    ),
    Case(
        "pseudonymize-without-key",
        "pseudonymizing without a key",
        "needs a key: set KFP_RAI_HMAC_KEY",
        {"d.csv": _csv(GOOD)},
        ("--data", "{d_csv}", "--pseudonymize", "job"),
        "load",
    ),
    Case(
        "short-key",
        "a pseudonymization key shorter than 16 bytes",
        "fewer than 16",
        {"d.csv": _csv(GOOD)},
        ("--data", "{d_csv}", "--pseudonymize", "job"),
        "load",
        {"KFP_RAI_HMAC_KEY": "short"},
    ),
    Case(
        "pseudonymize-sensitive",
        "pseudonymizing a sensitive column",
        "must stay readable",
        {"d.csv": _csv(GOOD)},
        ("--data", "{d_csv}", "--pseudonymize", "sex"),
        "load",
    ),
    Case(
        "pseudonymize-twice",
        "the same column to pseudonymize twice",
        "more than once",
        {"d.csv": _csv(GOOD)},
        ("--data", "{d_csv}", "--pseudonymize", "job", "--pseudonymize", "job"),
    ),
    # policy files
    Case(
        "policy-missing",
        "a policy file that does not exist",
        "policy file not found",
        cli=("--policy", "{dir}/no.yaml"),
    ),
    Case(
        "policy-directory", "a directory given as policy", "is a directory", {"p": _unreadable_dir}, ("--policy", "{p}")
    ),
    Case(
        "policy-not-utf8",
        "a policy saved as UTF-16 (Notepad)",
        "is not UTF-8 text",
        {"p.yaml": "validation:\n  min_accuracy: 0.9\n".encode("utf-16")},
        ("--policy", "{p_yaml}"),
    ),
    Case(
        "policy-not-yaml",
        "a policy that is not YAML",
        "the policy is not valid YAML",
        {"p.yaml": b"validation:\n  min_accuracy: [0.8\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-repeated-key",
        "a key repeated in one section",
        "repeats the key 'min_accuracy' (line 3)",
        {"p.yaml": b"validation:\n  min_accuracy: 0.5\n  min_accuracy: 0.9\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-unknown-key",
        "an unknown key",
        "unknown policy key 'min_acc'",
        {"p.yaml": b"validation:\n  min_acc: 0.9\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-section-list",
        "a section that is not a mapping",
        "section 'validation' must be a mapping",
        {"p.yaml": b"validation: [1, 2]\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-out-of-range",
        "a value outside its range",
        "min_accuracy must be a number in [0, 1], got 1.5",
        {"p.yaml": b"validation:\n  min_accuracy: 1.5\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-wrong-type",
        "a value of the wrong type",
        "enforce must be true or false, got 'yes'",
        {"p.yaml": b"validation:\n  enforce: 'yes'\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-nan",
        "NaN as a threshold",
        "must be a number > 0, got nan",
        {"p.yaml": b"drift:\n  psi_threshold: .nan\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-huge-number",
        "a threshold of 400 digits (past float range)",
        "min_accuracy must be a number in [0, 1]",
        {"p.yaml": b"validation:\n  min_accuracy: 1" + b"0" * 400 + b"\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-endless-number",
        "a number of 5,000 digits (past Python's digit limit)",
        "holds a value that cannot be read",
        {"p.yaml": b"validation:\n  min_accuracy: " + b"9" * 5000 + b"\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-too-large",
        "a 52 MB policy (refused unread, in milliseconds)",
        "over the 24 KiB a policy may be",
        {"p.yaml": lambda path: path.write_bytes(b"# padding\n" * 5_200_000)},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-too-deep",
        "a policy nested 10,000 levels deep within 24 KiB (no RecursionError)",
        "nested more than 20 levels deep",
        {"p.yaml": b"validation: " + b"[" * 10_000 + b"]" * 10_000 + b"\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-too-deep-blocks",
        "a policy nested 25 levels deep by indentation",
        "nested more than 20 levels deep",
        {"p.yaml": "".join(f"{'  ' * i}k{i}:\n" for i in range(25)).encode() + b"  " * 25 + b"x: 1\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    Case(
        "policy-bad-decision",
        "an unknown personal-data decision",
        "privacy.columns must be a mapping",
        {"p.yaml": b"privacy:\n  columns: {contact: erase}\n"},
        ("--policy", "{p_yaml}"),
        "load",
    ),
    # reference populations
    Case(
        "reference-no-source",
        "a reference population without its source",
        "lacks 'source'",
        {"r.yaml": b"year: 2000\nattributes: {}\n"},
        ("--reference-population", "{r_yaml}"),
        "check",
    ),
    Case(
        "reference-nan-share",
        "a NaN share",
        "must be a finite number >= 0",
        {"r.yaml": REF.replace("Male: 0.5,", "Male: .nan,").encode()},
        ("--reference-population", "{r_yaml}"),
        "check",
    ),
    Case(
        "reference-negative-share",
        "a negative share",
        "must be a finite number >= 0",
        {"r.yaml": REF.replace("Male: 0.5, Female: 0.5", "Male: -0.5, Female: 1.5").encode()},
        ("--reference-population", "{r_yaml}"),
        "check",
    ),
    Case(
        "reference-huge-share",
        "a share of 400 digits",
        "must be a finite number >= 0",
        {"r.yaml": REF.replace("Male: 0.5,", "Male: 1" + "0" * 400 + ",").encode()},
        ("--reference-population", "{r_yaml}"),
        "check",
    ),
    Case(
        "reference-year-text",
        "a year that is not a number",
        "'year' must be a whole year",
        {"r.yaml": REF.replace("2000", "the 2000 census").encode()},
        ("--reference-population", "{r_yaml}"),
        "check",
    ),
    Case(
        "reference-mapping-numbers",
        "a mapping to numbers",
        "must name source categories",
        {
            "r.yaml": REF.replace(
                "{shares: {White: 0.5, Black: 0.5}}", "{shares: {White: 0.5, Black: 0.5}, mapping: {W: [1]}}"
            ).encode()
        },
        ("--reference-population", "{r_yaml}"),
        "check",
    ),
    Case(
        "reference-sum",
        "shares that do not add up to 1",
        "add up to 0.600, not 1",
        {"r.yaml": REF.replace("Female: 0.5", "Female: 0.1").encode()},
        ("--reference-population", "{r_yaml}"),
        "check",
    ),
    Case(
        "reference-repeated-key",
        "a group listed twice",
        "repeats the key 'Male'",
        {"r.yaml": REF.replace("Male: 0.5,", "Male: 0.5, Male: 0.4,").encode()},
        ("--reference-population", "{r_yaml}"),
        "check",
    ),
    Case(
        "reference-unknown-key",
        "a key the reference population does not know",
        "reference population: unknown key 'yaer'",
        {"r.yaml": REF.replace("year: 2000", "year: 2000\nyaer: 2001").encode()},
        ("--reference-population", "{r_yaml}"),
        "check",
    ),
    Case(
        "reference-unknown-attribute-key",
        "a misspelled key under an attribute",
        "reference attribute 'sex': unknown key 'maping'",
        {
            "r.yaml": REF.replace(
                "{shares: {Male: 0.5, Female: 0.5}}", "{shares: {Male: 0.5, Female: 0.5}, maping: {}}"
            ).encode()
        },
        ("--reference-population", "{r_yaml}"),
        "check",
    ),
    # data collection plans
    Case(
        "plan-too-large",
        "a 52 MB collection plan (it would travel on a command line)",
        "over the 24 KiB a data collection plan may be",
        {"plan.yaml": lambda path: path.write_bytes(PLAN.encode() + b"# padding\n" * 5_200_000)},
        ("--collection-plan", "{plan_yaml}"),
    ),
    Case(
        "plan-no-licence",
        "a collection plan without its licence",
        "at the top level: 'licence' is a required property",
        {"plan.yaml": PLAN.replace("licence: CC0\n", "").encode()},
        ("--collection-plan", "{plan_yaml}"),
    ),
    Case(
        "plan-bad-date",
        "a collection period that is not a date",
        "data collection plan, at collection/start",
        {"plan.yaml": PLAN.replace("2020-01-01", "January").encode()},
        ("--collection-plan", "{plan_yaml}"),
    ),
    Case(
        "plan-end-before-start",
        "a collection period that ends before it starts",
        "collection.end 2019-12-31 is before collection.start 2020-01-01",
        {"plan.yaml": PLAN.replace("2020-12-31", "2019-12-31").encode()},
        ("--collection-plan", "{plan_yaml}"),
    ),
    Case(
        "plan-unknown-key",
        "a key the schema does not know",
        "Additional properties are not allowed ('owner' was unexpected)",
        {"plan.yaml": (PLAN + "owner: me\n").encode()},
        ("--collection-plan", "{plan_yaml}"),
    ),
    # reviewer files
    Case(
        "reviewer-unknown-metric",
        "a reviewer's metric kfp-rai does not compute",
        "'f1' is not a metric computed overall",
        {"rev.yaml": REVIEWER.replace("accuracy", "f1").encode()},
        ("--reviewer", "{rev_yaml}"),
    ),
    Case(
        "reviewer-short-hash",
        "a data hash that is not a sha256",
        "must be the 64 hex digits",
        {"rev.yaml": REVIEWER.replace("a" * 64, "abc").encode()},
        ("--reviewer", "{rev_yaml}"),
    ),
    # policy exceptions
    Case(
        "policy-exception-without-reason",
        "a gate that does not enforce, with no written reason",
        "representativeness.enforce false but representativeness.exception_reason is empty",
        {"p.yaml": b"representativeness: {enforce: false}\n"},
        ("--policy", "{p_yaml}"),
        "check",
    ),
    # options
    Case(
        "test-size",
        "a held-out share outside (0, 1)",
        "--test-size must be between 0 and 1",
        cli=("--test-size", "1.5"),
    ),
    Case(
        "seed-negative", "a negative seed", "--seed must be a whole number from 0 to 4294967295", cli=("--seed", "-1")
    ),
    Case(
        "seed-too-large",
        "a seed past 32 bits (numpy's limit)",
        "--seed must be a whole number from 0 to 4294967295",
        cli=("--seed", str(2**32)),
    ),
    Case(
        "model-name",
        "a model name the registry cannot hold",
        "model name 'Bad Name' is not valid",
        cli=("--model-name", "Bad Name"),
    ),
    Case("output-file", "--output naming a file", "is a file", {"out": b"x"}, ("--output", "{out}")),
    Case(
        "output-not-empty",
        "--output naming a directory with files",
        "already holds files",
        {"o/keep.txt": b"mine"},
        ("--output", "{dir}/o"),
    ),
    Case(
        "registry-under-file",
        "--registry under a file",
        "is a file, not a directory",
        {"f": b"x"},
        ("--registry", "{f}/registry"),
    ),
    Case("unknown-option", "an option kfp-rai run does not have", "unrecognized arguments: --bogus", cli=("--bogus",)),
    # serving, the audit trail, the kill switch
    Case(
        "serve-port",
        "a port that is not one",
        "is not a port number",
        cli=("--model-uri", "x", "--port", "99999"),
        command=("serve",),
    ),
    Case(
        "serve-no-audit-key",
        "serving without an audit key",
        "serving needs an audit key",
        cli=("--model-uri", "{dir}"),
        command=("serve",),
    ),
    Case(
        "serve-no-token",
        "serving without a bearer token for callers",
        "predictions need a bearer token",
        cli=("--model-uri", "{dir}"),
        env=AUDIT,
        command=("serve",),
    ),
    Case(
        "serve-short-token",
        "a serving token too short to be random",
        "fewer than 16",
        cli=("--model-uri", "{dir}"),
        env={**AUDIT, "KFP_RAI_SERVING_TOKEN": "letmein"},
        command=("serve",),
    ),
    Case(
        "serve-unregistered",
        "serving a model that was never registered through the gates",
        "it is not a registry version",
        {"m": _trained},
        ("--model-uri", "{m}"),
        env=SERVE,
        command=("serve",),
    ),
    Case(
        "serve-unsigned",
        "a model directory nobody signed",
        "is not signed",
        {"m": _model_dir({"sha256": "0" * 64}, sign=False)},
        ("--model-uri", "{m}"),
        env=SERVE,
        command=("serve",),
    ),
    Case(
        "serve-metadata-list",
        "model metadata that is not a mapping (signed)",
        "is not a model's metadata",
        {"m": _model_dir([1, 2], sign=True)},
        ("--model-uri", "{m}"),
        env=SERVE,
        command=("serve",),
    ),
    Case(
        "serve-metadata-json",
        "model metadata that is not JSON (signed)",
        "is not valid JSON",
        {"m": _model_dir("{", sign=True)},
        ("--model-uri", "{m}"),
        env=SERVE,
        command=("serve",),
    ),
    Case(
        "serve-corrupt-log",
        "an audit log with a line that is not a record",
        "log line 1 is not a record",
        {"s": _state, "s/audit/audit.jsonl": _corrupt_log, "m": _trained},
        ("--model-uri", "{m}", "--state-dir", "{s}", "--allow-unregistered", "--allow-unapproved"),
        env=SERVE,
        command=("serve",),
    ),
    Case(
        "serve-unapproved",
        "serving a registered version no person approved",
        "its registry records no approval of it",
        {"r": _registry()},
        ("--registry", "{r}", "--model", "m", "--version", "1"),
        env=SERVE,
        command=("serve",),
    ),
    Case(
        "serve-nothing-in-production",
        "serving the production alias before anyone promoted a version",
        "no version of m is production yet",
        {"r": _registry(approve=True)},
        ("--registry", "{r}", "--model", "m"),
        env=SERVE,
        command=("serve",),
    ),
    Case(
        "serve-both-sources",
        "a version URI and a registry model at once",
        "not both",
        {"r": _registry()},
        ("--model-uri", "{r}/m/1", "--registry", "{r}", "--model", "m"),
        env=SERVE,
        command=("serve",),
    ),
    # governance: a person's decisions in the registry
    Case(
        "models-no-registry",
        "a registry directory that does not exist",
        "no registry there",
        cli=("list", "--registry", "{dir}/nowhere"),
        command=("models",),
    ),
    Case(
        "models-unknown-model",
        "a model the registry does not hold",
        "holds no registered version of 'other'",
        {"r": _registry()},
        ("show", "other", "1", "--registry", "{r}"),
        command=("models",),
    ),
    Case(
        "models-bad-name",
        "a model name that is not one",
        "is not valid",
        {"r": _registry()},
        ("history", "Not A Name", "--registry", "{r}"),
        command=("models",),
    ),
    Case(
        "models-unknown-version",
        "a version the model does not have",
        "m has no version '7'",
        {"r": _registry()},
        ("approve", "m", "7", "--by", "bob", "--note", "ok", "--registry", "{r}"),
        command=("models",),
    ),
    Case(
        "models-approve-no-note",
        "an approval that does not say why",
        "required: --note",
        {"r": _registry()},
        ("approve", "m", "1", "--by", "bob", "--registry", "{r}"),
        command=("models",),
    ),
    Case(
        "models-approve-own-run",
        "an approval by the person who launched the run (separation of duties)",
        "ann launched the run that trained version 1",
        {"r": _registry()},
        ("approve", "m", "1", "--by", "Ann", "--note", "mine", "--registry", "{r}"),
        command=("models",),
    ),
    Case(
        "models-approve-twice",
        "approving a version that is approved already",
        "version 1 of m is approved, not a candidate",
        {"r": _registry(approve=True)},
        ("approve", "m", "1", "--by", "carol", "--note", "again", "--registry", "{r}"),
        command=("models",),
    ),
    Case(
        "models-promote-unapproved",
        "promoting a version nobody approved",
        "version 1 of m is not approved",
        {"r": _registry()},
        ("promote", "m", "1", "--by", "bob", "--registry", "{r}"),
        command=("models",),
    ),
    Case(
        "models-rollback-nothing",
        "rolling back a model nothing of which is in production",
        "there is nothing to roll back",
        {"r": _registry(approve=True)},
        ("rollback", "m", "--by", "bob", "--note", "incident", "--registry", "{r}"),
        command=("models",),
    ),
    Case(
        "models-tampered-event",
        "a registry event edited by someone without the key",
        "event 1 of m in",
        {"r": _registry(tamper=True)},
        ("list", "--registry", "{r}"),
        command=("models",),
    ),
    Case(
        "models-note-two-lines",
        "a note with a line break (it would forge a row of the history)",
        "holds control or invisible characters",
        {"r": _registry()},
        ("approve", "m", "1", "--by", "bob", "--note", "ok\n7 approved", "--registry", "{r}"),
        command=("models",),
    ),
    Case(
        "serve-alias-and-version",
        "both an alias and a version to serve",
        "give --alias or --version, not both",
        {"r": _registry(approve=True)},
        ("--registry", "{r}", "--model", "m", "--alias", "challenger", "--version", "1"),
        env=SERVE,
        command=("serve",),
    ),
    Case(
        "deploy-manifest-unapproved",
        "an InferenceService for a version no person approved",
        "is not an approved version of a registry",
        {"r": _registry()},
        ("--registry", "{r}", "--model", "m", "--version", "1", "--storage-uri", "s3://b/m/1"),
        command=("deploy-manifest",),
    ),
    Case(
        "deploy-manifest-local",
        "an InferenceService for a registry version no cluster can fetch",
        "a local path a cluster cannot fetch",
        {"m": _trained},
        ("--model-uri", "{m}", "--allow-unapproved"),
        command=("deploy-manifest",),
    ),
    Case(
        "serve-unknown-scheme",
        "a model URI of a scheme nothing can read",
        "Unrecognized filesystem type in URI",
        cli=("--model-uri", "bogus://bucket/m/1"),
        env=SERVE,
        command=("serve",),
    ),
    Case(
        "audit-verify-missing",
        "verifying a log that does not exist",
        "no audit log at",
        cli=("{dir}/gone.jsonl",),
        env=AUDIT,
        command=("audit", "verify"),
    ),
    Case(
        "disable-no-reason",
        "switching serving off without a reason",
        "required: --reason",
        {"s": _state},
        ("--state-dir", "{s}"),
        command=("disable",),
    ),
    Case(
        "disable-blank-reason",
        "a blank reason",
        "say why the model is disabled",
        {"s": _state},
        ("--state-dir", "{s}", "--reason", " "),
        command=("disable",),
    ),
    Case(
        "state-dir-shared",
        "a state directory others can write",
        "is writable by others",
        {"s": _shared_state},
        ("--state-dir", "{s}", "--reason", "x"),
        command=("disable",),
    ),
    # the statistics commands: kfp-rai drift and kfp-rai fairness
    Case(
        "drift-current-missing",
        "current data that is not there",
        "data not found",
        {"d.csv": _csv(GOOD)},
        ("--reference", "{d_csv}", "--current", "{dir}/nope.parquet"),
        command=("drift",),
    ),
    Case(
        "drift-summary-not-json",
        "a stored reference summary that is not JSON",
        "is not JSON",
        {"d.csv": _csv(GOOD), "s.json": b"{not json"},
        ("--reference", "{s_json}", "--current", "{d_csv}"),
        command=("drift",),
    ),
    Case(
        "drift-summary-other-kind",
        "a JSON file that is not a kfp-rai summary",
        "not a kfp-rai data summary",
        {"d.csv": _csv(GOOD), "s.json": b'{"kind": "model_card"}'},
        ("--reference", "{s_json}", "--current", "{d_csv}"),
        command=("drift",),
    ),
    Case(
        "drift-text-where-numbers-were",
        "current data with text in a column that held numbers in the reference",
        "does not match the reference's column types",
        {"d.csv": _csv(GOOD), "c.csv": _csv(GOOD.assign(hours="many"))},
        ("--reference", "{d_csv}", "--current", "{c_csv}"),
        command=("drift",),
    ),
    Case(
        "drift-unknown-column",
        "--columns naming a column the data lacks",
        "are not in both the reference and the current data",
        {"d.csv": _csv(GOOD)},
        ("--reference", "{d_csv}", "--current", "{d_csv}", "--columns", "salary"),
        command=("drift",),
    ),
    Case(
        "fairness-text-labels",
        "text labels without saying which one is positive",
        "pass --positive-label",
        {"d.csv": _csv(GOOD)},
        ("--data", "{d_csv}", "--target", "income", "--prediction", "income", "--sensitive", "sex"),
        command=("fairness",),
    ),
    Case(
        "fairness-unknown-column",
        "a sensitive column the scored data lacks",
        "lacks the columns ['ethnicity']",
        {"d.csv": _csv(GOOD)},
        (
            "--data",
            "{d_csv}",
            "--target",
            "income",
            "--prediction",
            "income",
            "--sensitive",
            "ethnicity",
            "--positive-label",
            ">50K",
        ),  # fmt: skip
        command=("fairness",),
    ),
    Case(
        "fairness-score-not-probability",
        "a score column that is not a probability",
        "scores must be probabilities in [0, 1]",
        {"d.csv": _csv(GOOD)},
        (
            "--data",
            "{d_csv}",
            "--target",
            "income",
            "--prediction",
            "income",
            "--sensitive",
            "sex",
            "--positive-label",
            ">50K",
            "--score",
            "hours",
        ),  # fmt: skip
        command=("fairness",),
    ),
    Case(
        "fairness-negative-n-boot",
        "a negative number of bootstrap resamples",
        "--n-boot must be 0 or more",
        {"d.csv": _csv(GOOD)},
        (
            "--data",
            "{d_csv}",
            "--target",
            "income",
            "--prediction",
            "income",
            "--sensitive",
            "sex",
            "--positive-label",
            ">50K",
            "--n-boot",
            "-5",
        ),  # fmt: skip
        command=("fairness",),
    ),
]


def _materialize(case: Case, tmp: Path) -> dict[str, str]:
    paths = {"dir": str(tmp)}
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)
        paths[name.replace(".", "_").replace("/", "_")] = str(path)
    return paths


CLI_CASES = [c for c in CASES if c.cli is not None]


def _written(root: Path) -> list[Path]:
    """Files under ``root``; a lock file taken and released while refusing is not an artifact."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.suffix != ".lock")


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_the_cli_says_what_is_wrong_in_one_line_and_runs_nothing(case, tmp_path, monkeypatch, capsys):
    from kfp_rai.cli import main

    monkeypatch.chdir(tmp_path)
    for name in ("KFP_RAI_HMAC_KEY", "KFP_RAI_HMAC_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    paths = _materialize(case, tmp_path)
    before = _written(tmp_path)
    try:
        code = main([*case.command, *(a.format(**paths) for a in case.cli)])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kfp-rai: error: ") and case.fragment in lines[0], err
    assert "Traceback" not in out + err
    assert _written(tmp_path) == before  # nothing written


HEAVY = ("too-wide", "policy-too-large", "policy-too-deep", "plan-too-large")


@pytest.mark.parametrize("case", [c for c in CASES if c.id in HEAVY], ids=HEAVY)
def test_inputs_built_to_stall_are_refused_within_a_second(case, tmp_path, monkeypatch, capsys):
    import time

    from kfp_rai.cli import main

    monkeypatch.chdir(tmp_path)
    paths = _materialize(case, tmp_path)
    main(["run", "--test-size", "2"])  # warm the imports the CLI needs, so the figure is the refusal's
    capsys.readouterr()
    started = time.perf_counter()
    assert main([*case.command, *(a.format(**paths) for a in case.cli)]) == 2
    assert time.perf_counter() - started < 1.0
    assert case.fragment in capsys.readouterr().err


def _component(case: Case, paths: dict[str, str], tmp: Path) -> None:
    from kfp.dsl import HTML, Artifact, Dataset, Metrics

    from kfp_rai.components import check_representativeness, load_dataset

    args = {"target": "income", "positive_label": ">50K", "sensitive_features": ["sex", "race"]}
    cli = [a.format(**paths) for a in case.cli or ()]
    options = dict(zip(cli[::2], cli[1::2], strict=False))
    if case.component == "load":
        source = options.get("--data", str(tmp / "good.csv"))
        if "--data" not in options:
            (tmp / "good.csv").write_bytes(_csv(GOOD))
        args["target"] = options.get("--target", "income")
        args["positive_label"] = options.get("--positive-label", ">50K")
        if "--sensitive" in options:
            args["sensitive_features"] = [options["--sensitive"]]
        pseudonymize = [cli[i + 1] for i, a in enumerate(cli) if a == "--pseudonymize"]
        policy = Path(options["--policy"]).read_text() if "--policy" in options else ""
        load_dataset.python_func(
            source=source,
            dataset=Dataset(name="d", uri=str(tmp / "out"), metadata={}),
            pseudonymize=pseudonymize,
            policy=policy,
            **args,
        )
    else:
        data = tmp / "data.parquet"
        GOOD.to_parquet(data)
        check_representativeness.python_func(
            dataset=Dataset(name="d", uri=str(data), metadata={}),
            sensitive_features=["sex", "race"],
            reference_population=Path(options["--reference-population"]).read_text()
            if "--reference-population" in options
            else REF,
            policy=Path(options["--policy"]).read_text() if "--policy" in options else "",
            report=Artifact(name="r", uri=str(tmp / "report"), metadata={}),
            report_html=HTML(name="h", uri=str(tmp / "report.html"), metadata={}),
            metrics=Metrics(name="m", uri=str(tmp / "metrics"), metadata={}),
        )


COMPONENT_CASES = [c for c in CASES if c.component]


@pytest.mark.parametrize("case", COMPONENT_CASES, ids=[c.id for c in COMPONENT_CASES])
def test_the_component_refuses_with_a_clear_error(case, tmp_path, monkeypatch):
    from kfp_rai.errors import RAIError

    for name in ("KFP_RAI_HMAC_KEY", "KFP_RAI_HMAC_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    paths = _materialize(case, tmp_path)
    with pytest.raises(RAIError) as info:
        _component(case, paths, tmp_path)
    assert case.fragment in str(info.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "report").exists()  # nothing half-written


def render_docs() -> str:
    lines = [
        "# Bad inputs",
        "",
        "Every bad input we know of, and what kfp-rai says. The CLI prints the message as one line on stderr",
        "(`kfp-rai: error: ...`) and exits with code 2 before anything runs, writing nothing; the component named",
        "fails its task with the same message. Generated from `tests/unit/test_bad_inputs.py`, which checks",
        f"every row ({len(CLI_CASES)} through the CLI, {len(COMPONENT_CASES)} through a component).",
        "",
        "| input | the message says | refused by |",
        "|---|---|---|",
    ]
    component = {
        "load": "`kfp-rai run`, `load_dataset`",
        "check": "`kfp-rai run`, `check_representativeness`",
        None: "`kfp-rai run`",
    }
    for case in CASES:
        where = component[case.component] if case.command == ("run",) else f"`kfp-rai {' '.join(case.command)}`"
        lines.append(f"| {case.what} | `{case.fragment}` | {where} |")
    return "\n".join(lines) + "\n"


def test_the_published_list_is_this_list():
    assert (REPO / "docs" / "bad-inputs.md").read_text() == render_docs(), (
        "run `python tests/unit/test_bad_inputs.py --write-docs`"
    )


if __name__ == "__main__" and "--write-docs" in sys.argv:
    (REPO / "docs" / "bad-inputs.md").write_text(render_docs())
    print(os.path.relpath(REPO / "docs" / "bad-inputs.md"))
