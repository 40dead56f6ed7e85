"""The server's scoring path: the DataFrame-free scorer gives exactly the pipeline's probabilities
(or is not used), and the batcher scores requests together on one OpenMP thread."""

import asyncio
import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kfp_rai.serving._fast import FastScorer, model_columns
from kfp_rai.serving._kserve import Batcher
from kfp_rai.serving._service import Job


@pytest.fixture(scope="module")
def fitted(adult_model):
    model, summary = adult_model
    return model, list(summary.features), summary.feature_profile


def _rows(adult, features, n=400):
    """Held-out-like rows with missing numbers, missing and unseen categories, out-of-range values."""
    frame = adult[features].sample(n, random_state=1).reset_index(drop=True)
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in frame.to_dict("records")]
    for i, row in enumerate(rows):
        if i % 11 == 0:
            row["workclass"] = None
        if i % 13 == 0:
            row["occupation"] = "Astronaut"  # never seen in training
        if i % 17 == 0:
            row["age"] = None
        if i % 19 == 0:
            row["capital-gain"] = 10**7
    return rows


def test_the_fast_scorer_gives_exactly_the_pipelines_probabilities(fitted, adult):
    model, features, profile = fitted
    scorer = FastScorer.for_model(model, features, profile)
    assert scorer is not None, "the pipeline kfp-rai trains must get the fast path"
    rows = _rows(adult, features)
    frame = pd.DataFrame(model_columns(rows, features, profile), columns=features)
    assert np.array_equal(scorer.transform(rows), model[:-1].transform(frame), equal_nan=True)
    assert np.array_equal(scorer.predict_proba(rows), model.predict_proba(frame))
    for one in rows[:20]:  # a single row, as most requests are
        assert np.array_equal(scorer.predict_proba([one]), model.predict_proba(frame.iloc[[rows.index(one)]]))


def test_other_model_shapes_keep_the_scikit_learn_path(adult):
    numeric = ["age", "hours-per-week"]
    data = adult.dropna(subset=numeric).head(500)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(data[numeric], data["income"])
    profile = {f: {"kind": "numeric", "min": 0.0, "max": 100.0} for f in numeric}
    assert FastScorer.for_model(model, numeric, profile) is None
    assert FastScorer.for_model(LogisticRegression().fit(data[numeric], data["income"]), numeric, profile) is None


def test_a_fast_scorer_that_disagrees_anywhere_is_not_used(fitted, monkeypatch, caplog):
    model, features, profile = fitted
    real = FastScorer.transform

    def off_by_a_hair(self, rows):
        X = real(self, rows)
        X[-1, -1] = np.nextafter(X[-1, -1], np.inf) if not np.isnan(X[-1, -1]) else 0.0
        return X

    monkeypatch.setattr(FastScorer, "transform", off_by_a_hair)
    assert FastScorer.for_model(model, features, profile) is None
    assert "disagrees with the model" in caplog.text


class _Recorder:
    """A stand-in service: holds its first batch until released, records batches and OpenMP threads."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.threads: list[int] = []
        self.release = threading.Event()

    def predict_batch(self, jobs):
        from threadpoolctl import threadpool_info

        if not self.batches:
            self.release.wait(10)
        self.batches.append(len(jobs))
        self.threads += [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]
        return [{"n": len(job.rows)} for job in jobs]


def test_requests_that_arrive_while_the_model_is_busy_are_scored_together_on_one_thread():
    recorder = _Recorder()
    batcher = Batcher(recorder)  # type: ignore[arg-type]

    async def main():
        first = asyncio.ensure_future(batcher.submit(Job([{}], None, "v1", False)))
        await asyncio.sleep(0.2)  # the first request is being scored
        rest = [asyncio.ensure_future(batcher.submit(Job([{}] * 2, None, "v1", False))) for _ in range(5)]
        await asyncio.sleep(0.2)
        recorder.release.set()
        return await first, await asyncio.gather(*rest)

    try:
        first, rest = asyncio.run(main())
    finally:
        batcher.close()
    assert first == {"n": 1} and rest == [{"n": 2}] * 5  # each answered with its own outcome
    assert recorder.batches == [1, 5]
    assert recorder.threads and set(recorder.threads) == {1}
