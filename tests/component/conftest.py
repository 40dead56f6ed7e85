"""Components run one at a time through kfp.local's SubprocessRunner (no venv, no cache)."""

import pytest

from kfp_rai.core.tables import read_table, write_table
from kfp_rai.pipelines.local import init_local

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def local_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("kfp-local")
    init_local(str(root))
    return root


@pytest.fixture(scope="session")
def sample_csv(tmp_path_factory):
    """4,000 rows of Adult as CSV: enough for every group, fast to train on."""
    path = tmp_path_factory.mktemp("data") / "adult-sample.csv"
    read_table("bundled:adult").sample(4000, random_state=0).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="session")
def shifted_parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "shifted.parquet"
    df = read_table("bundled:adult-test").sample(2000, random_state=0)
    write_table(df.assign(age=df["age"] + 15), path)
    return str(path)
