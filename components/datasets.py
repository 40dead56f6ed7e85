"""Data sets shipped inside the package: UCI Adult (CC BY 4.0) and its reference population."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kfp_rai.errors import DataValidationError

ADULT_COLUMNS = (
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
ADULT_TARGET = "income"
ADULT_POSITIVE_LABEL = ">50K"
ADULT_SENSITIVE = ("sex", "race")
ADULT_CITATION = (
    "Becker, B. & Kohavi, R. (1996). Adult [Dataset]. UCI Machine Learning Repository. "
    "https://doi.org/10.24432/C5XW20. License: CC BY 4.0."
)
_BUNDLED = {"adult": "adult.data.gz", "adult-test": "adult.test.gz"}


def data_path(*parts: str) -> Path:
    """Path of a file shipped in ``kfp_rai/data``."""
    return Path(__file__).resolve().parent.joinpath("data", *parts)


def load_adult(split: str = "train") -> pd.DataFrame:
    """Load the bundled UCI Adult data.

    Parameters
    ----------
    split : {"train", "test"}
        ``train`` is ``adult.data`` (32,561 rows), ``test`` is ``adult.test`` (16,281 rows).

    Returns
    -------
    pandas.DataFrame
        The 15 original columns; ``?`` becomes missing; the test labels lose their trailing ``.``.
    """
    name = {"train": "adult", "test": "adult-test"}.get(split)
    if name is None:
        raise DataValidationError(f"unknown Adult split {split!r}: use 'train' or 'test'")
    return load_bundled(name)


def load_bundled(name: str) -> pd.DataFrame:
    """Load a bundled data set by name: ``adult`` or ``adult-test``."""
    if name not in _BUNDLED:
        raise DataValidationError(f"unknown bundled data set {name!r}: choose one of {sorted(_BUNDLED)}")
    path = data_path("adult", _BUNDLED[name])
    df = pd.read_csv(
        path,
        names=list(ADULT_COLUMNS),
        skipinitialspace=True,
        na_values="?",
        comment="|",  # adult.test starts with a "|1x3 Cross validator" line
    )
    df[ADULT_TARGET] = df[ADULT_TARGET].str.rstrip(".")
    return df
