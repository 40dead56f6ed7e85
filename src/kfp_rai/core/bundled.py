"""Data shipped inside the package (UCI Adult, CC BY 4.0) and the defaults that belong to it.

A bundled data set brings its own model name and intended use. Any other source gets a model
name derived from its file name and an intended use marked "not stated": Adult's description
must never end up on a card for someone else's data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from kfp_rai.errors import DataValidationError

BUNDLED_PREFIX = "bundled:"
INTENDED_USE_NOT_STATED = (
    "Not stated: no intended use was given for this model (pass --intended-use / the intended_use "
    "parameter). Until one is written down, do not use the model for decisions about people."
)
_ADULT_COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
)
_ADULT_INTENDED_USE = (
    "Demonstration of a governed model lifecycle on UCI Adult (1994 CPS): predicts whether income "
    "exceeds $50K. Not for decisions about real people."
)


@dataclass(frozen=True)
class BundledDataset:
    """A data set shipped in ``kfp_rai/data`` with the defaults that describe it."""

    file: str
    model_name: str
    intended_use: str
    collection_plan: str


_BUNDLED = {
    "adult": BundledDataset("adult/adult.data.gz", "adult-income", _ADULT_INTENDED_USE, "adult/collection_plan.yaml"),
    "adult-test": BundledDataset(
        "adult/adult.test.gz", "adult-income", _ADULT_INTENDED_USE, "adult/collection_plan.yaml"
    ),
}


def data_path(*parts: str) -> Path:
    """Path of a file shipped in ``kfp_rai/data``."""
    return Path(__file__).resolve().parents[1].joinpath("data", *parts)


def _bundled(name: str) -> BundledDataset:
    if name not in _BUNDLED:
        raise DataValidationError(f"unknown bundled data set {name!r}: choose one of {sorted(_BUNDLED)}")
    return _BUNDLED[name]


def load_bundled(name: str) -> pd.DataFrame:
    """Load a bundled data set by name: ``adult`` (32,561 rows) or ``adult-test`` (16,281 rows).

    Returns
    -------
    pandas.DataFrame
        The 15 original columns; ``?`` becomes missing; the test labels lose their trailing ``.``.
    """
    df = pd.read_csv(
        data_path(_bundled(name).file),
        names=list(_ADULT_COLUMNS),
        skipinitialspace=True,
        na_values="?",
        comment="|",  # adult.test starts with a "|1x3 Cross validator" line
    )
    df["income"] = df["income"].str.rstrip(".")
    return df


def default_model_name(source: str) -> str:
    """The model name a data source implies: the bundled set's own, else the file's name.

    ``/data/Loan Applications 2024.csv`` gives ``loan-applications-2024``.
    """
    if source.startswith(BUNDLED_PREFIX):
        return _bundled(source[len(BUNDLED_PREFIX) :]).model_name
    stem = PurePosixPath(source.replace("\\", "/").rstrip("/")).name
    for suffix in (".gz", ".csv", ".parquet", ".pq"):
        stem = stem.removesuffix(suffix)
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")[:63]
    return name or "model"


def default_collection_plan(source: str) -> str:
    """The bundled set's data collection plan (YAML text), else "" (no plan: not judged)."""
    if source.startswith(BUNDLED_PREFIX):
        return data_path(*_bundled(source[len(BUNDLED_PREFIX) :]).collection_plan.split("/")).read_text("utf-8")
    return ""


def default_intended_use(source: str) -> str:
    """The bundled set's intended use, else a statement that none was given."""
    if source.startswith(BUNDLED_PREFIX):
        return _bundled(source[len(BUNDLED_PREFIX) :]).intended_use
    return INTENDED_USE_NOT_STATED
