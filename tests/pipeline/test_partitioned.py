"""Scale-out through kfp.local: the partitioned drift and fairness pipelines (dsl.ParallelFor over
parquet partitions, one mergeable summary each, merged in a task) give exactly the single-pass result."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from kfp_rai.core.model_dir import REFERENCE_FILE, save_model_dir
from kfp_rai.pipelines.local import init_local
from kfp_rai.pipelines.partitioned import partitioned_drift, partitioned_fairness
from kfp_rai.refresh import detect_drift, reference_summary
from kfp_rai.training import train_model
from kfp_rai.validation._scored import ScoredColumns, scored_fairness

pytestmark = pytest.mark.slow


def _partition(df, directory: Path, parts: int) -> Path:
    directory.mkdir()
    size = -(-len(df) // parts)
    for i in range(parts):
        df.iloc[i * size : (i + 1) * size].to_parquet(directory / f"part-{i:03d}.parquet")
    return directory


def _report(root: Path, task: str) -> dict:
    (path,) = [p for p in root.rglob("report") if p.parent.name.startswith(task)]
    return json.loads(path.read_text())


@pytest.fixture(autouse=True)
def print_is_left_alone():
    """kfp's parallel tasks once left builtins.print indented for the rest of the process (init_local mends it)."""
    import builtins

    before = builtins.print
    yield
    assert builtins.print is before


def test_partitioned_drift_equals_the_single_pass(adult, tmp_path):
    train, current = adult.iloc[:12000], adult.iloc[12000:20000].copy()
    current["age"] = current["age"] + 10
    model, summary = train_model(train, target="income", positive_label=">50K", sensitive_features=["sex", "race"])
    stored = reference_summary(train)
    model_dir = tmp_path / "model"
    extra = {REFERENCE_FILE: json.dumps(stored.to_dict()).encode()}
    save_model_dir(model, model_dir, {**asdict(summary), "name": "adult-income"}, extra)
    parts = _partition(current, tmp_path / "current", 3)
    root = tmp_path / "kfp"
    init_local(str(root))
    partitioned_drift(current_uri=str(parts), model_uri=str(model_dir), policy="")
    ours = _report(root, "merge-drift")
    single = detect_drift(stored, current).to_dict()
    assert ours["drifted_columns"] == single["drifted_columns"] == ["age"]
    assert ours["current_rows"] == single["current_rows"] == 8000
    for a, b in zip(ours["columns"], single["columns"], strict=True):
        assert (a["column"], a["statistic"], a["reference_shares"], a["current_shares"]) == (
            b["column"],
            b["statistic"],
            b["reference_shares"],
            b["current_shares"],
        )
    summaries = [p for p in root.rglob("summary") if p.is_file()]
    assert len(summaries) == 3  # one task per partition


def test_partitioned_fairness_equals_the_single_pass(adult, tmp_path):
    scored = adult.copy()
    scored["pred"] = np.where(scored["education-num"] > 12, ">50K", "<=50K")
    scored["score"] = np.clip(scored["education-num"] / 16, 0, 1)
    parts = _partition(scored, tmp_path / "scored", 4)
    root = tmp_path / "kfp"
    init_local(str(root))
    partitioned_fairness(
        scored_uri=str(parts),
        target="income",
        prediction="pred",
        sensitive_features=["sex", "race"],
        score="score",
        positive_label=">50K",
        policy="",
        seed=0,
    )
    ours = _report(root, "merge-fairness")
    columns = ScoredColumns("income", "pred", ("sex", "race"), "score", ">50K")
    single = scored_fairness(scored, columns).to_dict()
    assert ours["fairness"] == single["fairness"] and ours["overall"] == single["overall"]
    assert ours["findings"] == single["findings"] and ours["status"] == single["status"] == "failed"
