"""Shared fixtures: the bundled Adult data and a model trained on it once per session."""

import pandas as pd
import pytest

from kfp_rai.discovery import split_dataset
from kfp_rai.io import read_table
from kfp_rai.training import train_model

SENSITIVE = ["sex", "race"]


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    return read_table("bundled:adult")


@pytest.fixture(scope="session")
def adult_split(adult):
    return split_dataset(adult, target="income", test_size=0.3, seed=0)


@pytest.fixture(scope="session")
def adult_model(adult_split):
    train, _ = adult_split
    return train_model(train, target="income", positive_label=">50K", sensitive_features=SENSITIVE, seed=0)
