"""The statistics engine: mergeable summaries (merge of parts == summary of the whole), one
streamed pass over every input form, sketch-based KS/Wasserstein against scipy's exact values,
ROC AUC from score histograms, and a bootstrap from counts that agrees with a row-level one."""

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp, wasserstein_distance
from sklearn.metrics import roc_auc_score

from kfp_rai.errors import DataValidationError
from kfp_rai.stats.bins import reference_bins
from kfp_rai.stats.bootstrap import bootstrap_counts, bootstrap_roc_auc, cell_counts, disparities, rates
from kfp_rai.stats.drift import ks_from_sketches, wasserstein_from_sketches
from kfp_rai.stats.groups import GroupCounts, merge_counts, roc_auc
from kfp_rai.stats.stream import open_batches, show_progress
from kfp_rai.stats.summary import DataSummary, merge_all, summarize


def _frame(n, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < 0.05] = np.nan
    cat = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    cat[rng.random(n) < 0.03] = None
    return pd.DataFrame({"x": x, "k": rng.integers(0, 100, n), "cat": cat})


def _bins(df, n_bins=10, limit=3):
    data = open_batches(df)
    return reference_bins(data.schema, list(df.columns), data.read(), n_bins=n_bins, category_limit=limit)


def _assert_same(a: DataSummary, b: DataSummary):
    assert a.rows == b.rows
    for name, sa in a.columns.items():
        sb = b.columns[name]
        np.testing.assert_array_equal(sa.counts, sb.counts)
        if sa.bins.kind == "numeric":
            assert sa.n == sb.n and sa.minimum == sb.minimum and sa.maximum == sb.maximum
            assert sa.mean == pytest.approx(sb.mean, rel=1e-12, abs=1e-12)
            assert sa.m2 == pytest.approx(sb.m2, rel=1e-9)
            assert sa.sketch.n == sb.sketch.n


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_merging_the_summaries_of_parts_gives_the_summary_of_the_whole(seed, sizes):
    whole = _frame(sum(sizes), seed)
    bins = _bins(_frame(500, seed + 1))
    parts, at = [], 0
    for size in sizes:
        parts.append(summarize(open_batches(whole.iloc[at : at + size]).read(), bins))
        at += size
    one = summarize(open_batches(whole).read(), bins)
    _assert_same(merge_all(parts), one)
    _assert_same(merge_all(parts[::-1]), one)  # order does not matter
    x = whole["x"].dropna()
    numeric = one.columns["x"]
    if len(x) > 1:
        assert numeric.mean == pytest.approx(x.mean(), rel=1e-9, abs=1e-12)
        assert numeric.variance == pytest.approx(x.var(ddof=1), rel=1e-9)
    assert numeric.missing == whole["x"].isna().sum()
    assert one.columns["cat"].missing == whole["cat"].isna().sum()


def test_a_categorical_column_keeps_its_top_categories_and_counts_the_rest_as_other():
    rng = np.random.default_rng(1)
    levels = np.array([f"level-{i}" for i in range(10_000)])
    ref = pd.DataFrame({"c": levels[np.minimum(rng.zipf(1.5, 50_000), 10_000) - 1]})
    bins = _bins(ref, limit=20)
    summary = summarize(open_batches(ref).read(), bins)
    cat = summary.columns["c"]
    assert len(cat.bins.categories) == 20 and len(cat.counts) == 22  # 20 kept, <other>, <missing>
    top = ref["c"].value_counts()
    for name in top.index[:20]:
        assert cat.counts[cat.bins.categories.index(name)] == top[name]
    assert cat.counts[-2] == top.iloc[20:].sum() and cat.total == len(ref)
    assert len(json.dumps(summary.to_dict())) < 5_000  # bounded, whatever the number of levels


def test_summaries_round_trip_through_json_and_refuse_damage():
    df = _frame(3000)
    s = summarize(open_batches(df).read(), _bins(df))
    back = DataSummary.from_dict(json.loads(json.dumps(s.to_dict())))
    _assert_same(back, s)
    assert back.columns["x"].sketch.get_quantile(0.5) == s.columns["x"].sketch.get_quantile(0.5)
    with pytest.raises(DataValidationError, match="not a kfp-rai data summary"):
        DataSummary.from_dict({"kind": "something else"})
    broken = s.to_dict()
    broken["columns"][0]["kll"] = "AAAA"
    with pytest.raises(DataValidationError, match="damaged"):
        DataSummary.from_dict(broken)


def test_summaries_over_different_bins_do_not_merge():
    a, b = _frame(500, 1), _frame(500, 2, shift=3)
    with pytest.raises(DataValidationError, match="same reference bins"):
        summarize(open_batches(a).read(), _bins(a)).merge(summarize(open_batches(b).read(), _bins(b)))


def test_every_input_form_streams_to_the_same_summary(tmp_path):
    df = _frame(20_000, 3)
    bins = _bins(df)
    expected = summarize(open_batches(df).read(), bins)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "all.parquet", row_group_size=3000)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(4):
        chunk = df.iloc[i * 5000 : (i + 1) * 5000]
        pq.write_table(pa.Table.from_pandas(chunk, preserve_index=False), parts / f"part-{i}.parquet")
    df.to_csv(tmp_path / "all.csv", index=False)
    for source in (tmp_path / "all.parquet", parts, tmp_path / "all.csv"):
        data = open_batches(source, batch_rows=1024)
        batches = list(data.read(["x", "k", "cat"]))
        assert len(batches) > 4 and max(b.num_rows for b in batches) <= 1024  # streamed, not read whole
        _assert_same(summarize(batches, bins), expected)


def test_bad_sources_are_one_clear_error(tmp_path):
    with pytest.raises(DataValidationError, match="data not found"):
        open_batches(tmp_path / "nope.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match="no .parquet files"):
        open_batches(tmp_path / "empty")
    (tmp_path / "x.txt").write_text("a,b\n1,2\n")
    with pytest.raises(DataValidationError, match="cannot tell the format"):
        open_batches(tmp_path / "x.txt")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError, match="cannot read"):
        open_batches(tmp_path / "bad.parquet")


def test_the_progress_bar_is_off_unless_stderr_is_a_terminal(monkeypatch, capsys):
    assert show_progress(10**9) is False  # pytest's stderr is not a terminal
    assert show_progress(10, asked=True) is True
    data = open_batches(_frame(1000))
    list(data.read())
    assert capsys.readouterr().err == ""
    monkeypatch.setattr("sys.stderr", io.StringIO())
    list(data.read(progress=True))
    import sys

    assert "rows" in sys.stderr.getvalue()


def test_ks_and_wasserstein_from_sketches_are_within_their_bound_of_scipy():
    rng = np.random.default_rng(5)
    for shift in (0.0, 0.05, 0.3):
        a, b = rng.normal(0, 1, 200_000), rng.normal(shift, 1.2, 150_000)
        sa, sb = _bins(pd.DataFrame({"x": a})), None
        ref = summarize(open_batches(pd.DataFrame({"x": a})).read(), sa).columns["x"]
        cur = summarize(open_batches(pd.DataFrame({"x": b})).read(), sa).columns["x"]
        d = ks_from_sketches(ref.sketch, cur.sketch)
        exact = ks_2samp(a, b)
        # Each sketch's rank error is within its bound with 99% confidence: the sum, doubled, is not
        # a flaky limit (KLL is randomized; its seed is not ours to set).
        bound = ref.sketch.normalized_rank_error(False) + cur.sketch.normalized_rank_error(False)
        assert abs(d - exact.statistic) <= 2 * bound
        w = wasserstein_from_sketches(ref.sketch, cur.sketch)
        assert w == pytest.approx(wasserstein_distance(a, b), abs=0.1 * a.std())  # RESULTS.md: <= 0.062 sd
        del sb


def test_roc_auc_from_histograms_is_within_its_bound_of_sklearn():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 50_000)
    scores = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    counts = GroupCounts.of("all", np.zeros(len(y)), y, (scores >= 0.5).astype(int), scores)
    auc, bound = roc_auc(counts.scores[0])
    assert abs(auc - roc_auc_score(y, scores)) <= bound and bound < 1e-3
    assert np.isnan(roc_auc(np.zeros((2, 10)))[0])


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5))
def test_group_counts_of_parts_merge_to_the_counts_of_the_whole(seed, n_parts):
    rng = np.random.default_rng(seed)
    n = 1000
    groups = rng.choice(["F", "M", "X"], n, p=[0.45, 0.5, 0.05])
    y, scores = rng.integers(0, 2, n), rng.random(n)
    pred = (scores >= 0.5).astype(int)
    whole = GroupCounts.of("sex", groups, y, pred, scores)
    cuts = np.sort(rng.integers(0, n, n_parts - 1))
    bounds = [0, *cuts.tolist(), n]
    parts = [
        GroupCounts.of("sex", groups[a:b], y[a:b], pred[a:b], scores[a:b])
        for a, b in zip(bounds, bounds[1:], strict=False)
        if b > a
    ]
    merged = merge_counts(parts)
    assert merged.labels == whole.labels
    np.testing.assert_array_equal(merged.cells, whole.cells)
    np.testing.assert_array_equal(merged.scores, whole.scores)
    back = GroupCounts.from_dict(json.loads(json.dumps(merged.to_dict())))
    np.testing.assert_array_equal(back.scores, whole.scores)


def _row_bootstrap(codes, y, p, n_groups, n_boot, seed):
    """The textbook bootstrap: resample rows, recount (what fairlearn's n_boot does, per resample)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, n_groups, 4), dtype=np.int64)
    for i in range(n_boot):
        idx = rng.integers(0, len(codes), len(codes))
        out[i] = cell_counts(codes[idx], y[idx], p[idx], n_groups)
    return out


def test_the_bootstrap_from_counts_agrees_with_a_row_level_bootstrap():
    rng = np.random.default_rng(7)
    n, n_boot = 4000, 2000
    codes = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    y = rng.integers(0, 2, n)
    p = (rng.random(n) < 0.3 + 0.2 * y + 0.1 * codes).astype(int)
    counts = cell_counts(codes, y, p, 3)
    ours = bootstrap_counts(counts, n_boot=n_boot, seed=1)
    rows = _row_bootstrap(codes, y, p, 3, n_boot, seed=2)
    for name in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"):
        a, b = rates(ours)[name], rates(rows)[name]
        sd = b.std(axis=0)
        # Monte-Carlo error of a 2.5%/97.5% percentile from 2000 resamples is ~0.1 sd; allow 0.25 sd.
        for q in (2.5, 50, 97.5):
            assert np.all(np.abs(np.percentile(a, q, axis=0) - np.percentile(b, q, axis=0)) <= 0.25 * sd)
        assert np.allclose(a.std(axis=0), sd, rtol=0.1)
    dp_a, dp_b = disparities(ours)["demographic_parity_difference"], disparities(rows)["demographic_parity_difference"]
    assert abs(np.percentile(dp_a, 97.5) - np.percentile(dp_b, 97.5)) <= 0.25 * dp_b.std()


def test_roc_auc_from_resampled_histograms_agrees_with_a_row_level_bootstrap_of_sklearn():
    rng = np.random.default_rng(3)
    n, n_boot = 600, 1000
    y = rng.integers(0, 2, n)
    scores = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    hist = GroupCounts.of("g", np.zeros(n), y, (scores >= 0.5).astype(int), scores).scores[0]
    ours = bootstrap_roc_auc(hist, n_boot=n_boot, seed=0)
    # Row-level bootstrap stratified by class, each resample scored by scikit-learn.
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    theirs = []
    for _ in range(n_boot):
        rows = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        theirs.append(roc_auc_score(y[rows], scores[rows]))
    theirs = np.array(theirs)
    sd = theirs.std()
    for q in (2.5, 50, 97.5):
        assert abs(np.percentile(ours, q) - np.percentile(theirs, q)) <= 0.25 * sd
    assert ours.std() == pytest.approx(sd, rel=0.1)
    assert np.isnan(bootstrap_roc_auc(hist * np.array([[1], [0]]), n_boot=5, seed=0)).all()


def test_the_bootstrap_is_seeded_its_cost_is_rows_free_and_strata_keep_their_size():
    small = np.array([[30, 5, 4, 11], [20, 2, 3, 5]])
    big = small * 100_000  # 10M rows' worth of counts
    np.testing.assert_array_equal(
        bootstrap_counts(small, n_boot=50, seed=4), bootstrap_counts(small, n_boot=50, seed=4)
    )
    import time

    started = time.perf_counter()
    drawn = bootstrap_counts(big, n_boot=1000, seed=0)
    assert time.perf_counter() - started < 5.0  # ~10 ms here: it depends on cells, not rows
    assert (drawn.sum(axis=(1, 2)) == big.sum()).all()
    strata = bootstrap_counts(small, n_boot=200, seed=0, stratified=True)
    assert (strata.sum(axis=2) == small.sum(axis=1)).all()  # each group's size is fixed


@pytest.fixture(scope="module")
def scored(adult, tmp_path_factory):
    """Adult with a rule-based prediction and score, written as three parquet partitions."""
    df = adult.copy()
    df["pred"] = np.where(df["education-num"] > 12, ">50K", "<=50K")
    df["score"] = np.clip(df["education-num"] / 16, 0, 1)
    root = tmp_path_factory.mktemp("scored")
    (root / "parts").mkdir()
    for i, start in enumerate(range(0, len(df), 11_000)):
        df.iloc[start : start + 11_000].to_parquet(root / "parts" / f"part-{i}.parquet")
    df.to_parquet(root / "all.parquet")
    return df, root


def test_the_fairness_command_matches_fairlearn_and_the_partitioned_input(scored, capsys):
    from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

    from kfp_rai.cli import main

    df, root = scored
    args = ["--target", "income", "--prediction", "pred", "--score", "score", "--sensitive", "sex", "race"]
    args += ["--positive-label", ">50K", "--n-boot", "300"]
    assert main(["fairness", "--data", str(root / "all.parquet"), *args]) == 1  # the rule is unfair to women
    whole = json.loads(capsys.readouterr().out)
    assert main(["fairness", "--data", str(root / "parts"), *args]) == 1
    parts = json.loads(capsys.readouterr().out)
    assert whole["fairness"] == parts["fairness"] and whole["overall"] == parts["overall"]
    # --sensitive repeated, as kfp-rai run takes it, judges every attribute named (not the last only)
    repeated = [
        *args[: args.index("--sensitive")],
        "--sensitive",
        "sex",
        "--sensitive",
        "race",
        *args[args.index("race") + 1 :],
    ]
    assert main(["fairness", "--data", str(root / "all.parquet"), *repeated]) == 1
    assert json.loads(capsys.readouterr().out)["fairness"] == whole["fairness"]
    y, p = (df["income"] == ">50K").astype(int), (df["pred"] == ">50K").astype(int)
    mf = MetricFrame(
        metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate},
        y_true=y,
        y_pred=p,
        sensitive_features=df["sex"],
    )
    sex = next(f for f in whole["fairness"] if f["attribute"] == "sex")
    for g in sex["groups"]:
        assert g["selection_rate"] == pytest.approx(mf.by_group.loc[g["group"], "selection_rate"], abs=1e-12)
        assert g["true_positive_rate"] == pytest.approx(mf.by_group.loc[g["group"], "true_positive_rate"], abs=1e-12)
        low, high = g["intervals"]["selection_rate"]
        assert low < g["selection_rate"] < high
    assert whole["overall"]["roc_auc"] == pytest.approx(roc_auc_score(y, df["score"]), abs=1e-3)


def test_the_drift_command_equals_the_stage_and_reuses_a_stored_reference(adult, tmp_path, capsys):
    from kfp_rai.cli import main
    from kfp_rai.refresh import detect_drift

    ref, cur = adult.iloc[:16000], adult.iloc[16000:].copy()
    cur["age"] = cur["age"] + 8
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    stored = tmp_path / "ref.json"
    code = main(["drift", "--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.csv"),
                 "--save-reference", str(stored), "--output", str(tmp_path / "d.json")])  # fmt: skip
    assert code == 1 and capsys.readouterr().out.startswith("warning: ")
    from_data = json.loads((tmp_path / "d.json").read_text())
    assert main(["drift", "--reference", str(stored), "--current", str(tmp_path / "cur.csv")]) == 1
    from_summary = json.loads(capsys.readouterr().out)
    stage = detect_drift(ref, cur).to_dict()
    for report in (from_data, from_summary):
        assert report["drifted_columns"] == stage["drifted_columns"] == ["age"]
        assert [c["statistic"] for c in report["columns"]] == pytest.approx([c["statistic"] for c in stage["columns"]])
    assert main(["drift", "--reference", str(stored), "--current", str(tmp_path / "ref.parquet")]) == 0


def test_reference_bins_are_exact_quantiles_when_small_and_deterministic_when_large():
    x = np.random.default_rng(3).lognormal(size=600_000)
    small = pd.DataFrame({"x": x[:50_000]})
    edges = _bins(small)[0].edges
    np.testing.assert_array_equal(edges, np.unique(np.quantile(x[:50_000], np.linspace(0, 1, 11)[1:-1])))
    big = pd.DataFrame({"x": x})
    data = open_batches(big, batch_rows=7_777)
    first = reference_bins(data.schema, ["x"], data.read(), n_bins=10, category_limit=5)
    assert first == reference_bins(data.schema, ["x"], data.read(), n_bins=10, category_limit=5)
    exact = np.quantile(x, np.linspace(0, 1, 11)[1:-1])
    ranks = np.searchsorted(np.sort(x), first[0].edges) / len(x)
    assert np.abs(ranks - np.searchsorted(np.sort(x), exact) / len(x)).max() < 0.005


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 500), min_size=2, max_size=8), st.integers(0, 10_000))
def test_the_categorical_test_equals_scipys(reference, seed):
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency

    from kfp_rai.stats.drift import Binned, categorical_test

    rng = np.random.default_rng(seed)
    ref = np.array(reference) + 1
    weights = ref + rng.random(len(ref)) * 50
    cur = rng.multinomial(int(ref.sum()), weights / weights.sum())
    stat, p, js = categorical_test(Binned(tuple(map(str, range(len(ref)))), ref, cur))
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    expected = chi2_contingency(table)
    assert stat == pytest.approx(expected[0], rel=1e-9, abs=1e-9)
    assert p == pytest.approx(expected[1], rel=1e-6, abs=1e-12)
    assert js == pytest.approx(jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2), abs=1e-9)


def test_the_two_pass_reference_summary_equals_bins_then_summarize():
    from kfp_rai.stats.bins import summarize_reference

    df = _frame(30_000, 9)
    data = open_batches(df, batch_rows=4096)
    two_pass = summarize_reference(data.schema, list(df.columns), data.read, n_bins=10, category_limit=3)
    expected = summarize(data.read(), _bins(df))
    assert two_pass.bins == expected.bins
    _assert_same(two_pass, expected)


def test_reference_bins_are_not_fooled_by_periodic_or_sorted_row_order():
    periodic = pd.DataFrame({"x": np.tile([0.0, 1.0, 2.0, 3.0], 150_000)})  # 600k rows: sampled
    assert {1.0, 2.0, 3.0} <= set(_bins(periodic)[0].edges)  # every value seen (a 1-in-4 stride saw only 0)
    ordered = pd.DataFrame({"x": np.arange(600_000, dtype=float)})
    edges = np.array(_bins(ordered)[0].edges)
    assert np.abs(edges / 600_000 - np.linspace(0.1, 0.9, 9)).max() < 0.005


def test_summaries_over_other_bins_or_missing_columns_never_pass_silently(tmp_path):
    from kfp_rai.core.verdict import GateStatus
    from kfp_rai.refresh import detect_drift, drift_between, reference_summary

    a, b = _frame(3000, 1), _frame(3000, 2, shift=5)
    sa, sb = reference_summary(a), reference_summary(b)
    with pytest.raises(DataValidationError, match="other bins"):
        drift_between(sa, sb)  # would compare bin 3 of one with bin 3 of the other
    current = a.drop(columns=["cat"]).assign(x=a["x"] + 3)
    report = detect_drift(sa, current)
    assert report.verdict.status is GateStatus.NOT_JUDGED  # fails closed: "cat" cannot be judged
    assert "cat: in the reference but not in the current data" in report.verdict.reason
    assert report.drifted_columns == ("x",)
    with pytest.raises(DataValidationError, match="not in both"):
        detect_drift(sa, a.assign(extra=1), columns=["extra"])


def test_csv_with_spaces_after_commas_reads_as_read_table_does(tmp_path):
    from kfp_rai.core.tables import read_table

    path = tmp_path / "uci.csv"
    path.write_text("age, workclass, hours\n39, State-gov, 40\n50, Self-emp, ?\n38, Private, 40\n")
    data = open_batches(path)
    (batch,) = list(data.read())
    assert batch.schema.names == ["age", "workclass", "hours"]
    assert batch.column("workclass").to_pylist() == read_table(path)["workclass"].tolist()
    assert batch.schema.field("age").type == pa.float64()  # numbers, as read_table finds them
    assert batch.column("hours").to_pylist() == ["40", "?", "40"]  # "?" makes it text, for read_table too


def test_the_pandas_index_and_hidden_files_are_not_data(tmp_path):
    from kfp_rai.refresh import detect_drift

    df = _frame(3000, 4)
    sampled = df.sample(2000, random_state=0)  # a non-default index: pandas stores it as a column
    sampled.to_parquet(tmp_path / "cur.parquet")
    assert open_batches(tmp_path / "cur.parquet").schema.names == ["x", "k", "cat"]
    assert detect_drift(df, tmp_path / "cur.parquet").drifted_columns == ()
    parts = tmp_path / "parts"
    (parts / "_temporary").mkdir(parents=True)
    df.iloc[:1500].to_parquet(parts / "part-0.parquet")
    df.iloc[1500:].to_parquet(parts / "part-1.parquet")
    df.to_parquet(parts / "_temporary" / "part-0.parquet")  # a failed job's leftovers
    df.to_parquet(parts / ".part-2.parquet")
    assert open_batches(parts).rows == 3000


def test_a_literal_missing_label_and_nulls_are_one_group_and_empty_partitions_count_nothing(tmp_path):
    from kfp_rai.validation._scored import ScoredColumns, count_scored, merge_scored

    df = pd.DataFrame({"g": ["a", None, "<missing>", "a"], "y": [1, 0, 1, 0], "p": [1, 0, 0, 0]})
    counts = count_scored(df, ScoredColumns("y", "p", ("g",)))["g"]
    assert counts.labels == ("<missing>", "a") and counts.cells.sum() == 4
    empty = count_scored(df.iloc[:0], ScoredColumns("y", "p", ("g",)))
    assert empty == {}
    merged = merge_scored([empty, count_scored(df, ScoredColumns("y", "p", ("g",)))])
    assert merged["g"].cells.sum() == 4


def test_the_bundled_prefix_is_the_one_core_bundled_uses():
    from kfp_rai.core.bundled import BUNDLED_PREFIX
    from kfp_rai.stats.stream import _BUNDLED

    assert _BUNDLED == BUNDLED_PREFIX
    assert open_batches("bundled:adult").rows == 32_561


def test_a_text_column_of_unique_values_is_refused_not_counted_without_bound(monkeypatch):
    from kfp_rai.stats.bins import BinsBuilder

    monkeypatch.setattr(BinsBuilder, "MAX_LEVELS", 1000)
    ids = pd.DataFrame({"customer": [f"C{i:07d}" for i in range(5000)], "x": np.arange(5000.0)})
    with pytest.raises(DataValidationError, match="more than 1,000 distinct values: an identifier"):
        _bins(ids)
    assert [b.column for b in _bins(ids[["x"]])] == ["x"]


def test_a_text_score_column_is_one_clear_error():
    from kfp_rai.validation._scored import ScoredColumns, count_scored

    df = pd.DataFrame({"g": ["a", "b"], "y": [1, 0], "p": [1, 0], "s": ["high", "low"]})
    with pytest.raises(DataValidationError, match="column 's' must hold probabilities, not text"):
        count_scored(df, ScoredColumns("y", "p", ("g",), "s"))
