from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import precision_score

from kfp_rai.core.report import STATUS_COLOURS
from kfp_rai.core.verdict import GateStatus
from kfp_rai.policy import ValidationPolicy
from kfp_rai.stats.bootstrap import bootstrap_counts, cell_counts, disparities, rates
from kfp_rai.stats.intervals import wilson_interval
from kfp_rai.validation import evaluate_model

SENSITIVE = ["sex", "race"]


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=2, max_value=4))
def test_count_metrics_equal_fairlearn(seed, n_groups):
    rng = np.random.default_rng(seed)
    n = 300
    groups = rng.integers(0, n_groups, n)
    y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
    ours = rates(cell_counts(groups, y, p, n_groups))
    mf = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "precision": partial(precision_score, zero_division=np.nan),
        },
        y_true=y,
        y_pred=p,
        sensitive_features=groups,
    )
    present = mf.by_group.index.to_numpy()
    for name in ("selection_rate", "true_positive_rate", "false_positive_rate", "precision"):
        np.testing.assert_allclose(ours[name][present], mf.by_group[name].to_numpy(), rtol=0, atol=1e-12)
    d = disparities(cell_counts(groups, y, p, n_groups)[present])
    exact = pytest.approx
    assert d["demographic_parity_difference"] == exact(
        demographic_parity_difference(y, p, sensitive_features=groups), abs=1e-12
    )
    assert d["demographic_parity_ratio"] == exact(demographic_parity_ratio(y, p, sensitive_features=groups), abs=1e-12)
    assert d["equalized_odds_difference"] == exact(
        equalized_odds_difference(y, p, sensitive_features=groups), abs=1e-12
    )


def test_bootstrap_is_seeded_and_centred():
    rng = np.random.default_rng(0)
    groups, y, p = rng.integers(0, 2, 2000), rng.integers(0, 2, 2000), rng.integers(0, 2, 2000)
    a = bootstrap_counts(cell_counts(groups, y, p, 2), n_boot=64, seed=3)
    b = bootstrap_counts(cell_counts(groups, y, p, 2), n_boot=64, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (64, 2, 4) and (a.sum(axis=(1, 2)) == 2000).all()
    point = rates(cell_counts(groups, y, p, 2))["selection_rate"]
    boot = rates(a)["selection_rate"]
    assert np.abs(boot.mean(axis=0) - point).max() < 0.01


def test_adult_model_matches_reference_figures_and_is_blocked(adult_split, adult_model):
    _, test = adult_split
    model, summary = adult_model
    report = evaluate_model(
        model, test, features=summary.features, target="income", positive_label=">50K", sensitive_features=SENSITIVE
    )
    # Reference figures in the data README: accuracy 0.870, ROC AUC 0.926, DP difference by sex ~0.18.
    assert report.overall["accuracy"] == pytest.approx(0.870, abs=0.01)
    assert report.overall["roc_auc"] == pytest.approx(0.926, abs=0.01)
    sex = report.disparities()["sex"]
    assert sex["demographic_parity_difference"] == pytest.approx(0.176, abs=0.02)
    assert sex["demographic_parity_ratio"] < 0.8
    assert not report.passed and report.status is GateStatus.FAILED
    ratio = next(f for f in report.verdict.problems if f.rule == "validation.min_demographic_parity_ratio")
    assert ratio.subject == "sex" and ratio.observed == pytest.approx(sex["demographic_parity_ratio"])
    assert ratio.interval[0] <= ratio.observed <= ratio.interval[1]
    low, high = report.overall_intervals["accuracy"]
    assert low < report.overall["accuracy"] < high
    intersection = next(f for f in report.fairness if f.intersectional)
    assert intersection.gated and len(intersection.groups) == 10
    # The 21 test rows of Female × Other are too small to judge (fails closed), and the intersection's
    # disparities are taken between the groups that are large enough.
    small = next(f for f in report.verdict.findings if f.subject == "sex × race=Female × Other")
    assert small.status is GateStatus.NOT_JUDGED and "too small to judge" in small.message
    judged = [g for g in intersection.groups if not g.too_small]
    rates = [g.selection_rate for g in judged]
    assert intersection.demographic_parity_difference == pytest.approx(max(rates) - min(rates))
    # Each group's ROC AUC has its bootstrap interval too.
    women = next(g for g in report.fairness[0].groups if g.group == "Female")
    assert women.intervals["roc_auc"][0] < women.roc_auc < women.intervals["roc_auc"][1]
    reported = evaluate_model(
        model,
        test,
        features=summary.features,
        target="income",
        positive_label=">50K",
        sensitive_features=SENSITIVE,
        policy=ValidationPolicy(gate_intersections=False),
    )
    assert not next(f for f in reported.fairness if f.intersectional).gated
    assert not any(f.subject.startswith("sex × race") for f in reported.verdict.findings)
    assert report.confusion_matrix[0][0] + report.confusion_matrix[1][1] == round(
        report.overall["accuracy"] * len(test)
    )


class _Fixed:
    """A 'model' returning given scores, to drive the gate exactly."""

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=float)

    def predict_proba(self, X):
        return np.column_stack([1 - self.scores[: len(X)], self.scores[: len(X)]])


def _frame(n_per_group=100):
    groups = ["a"] * n_per_group + ["b"] * n_per_group
    y = (["pos", "neg"] * (n_per_group // 2)) * 2
    return pd.DataFrame({"x": range(2 * n_per_group), "g": groups, "y": y})


def test_perfect_fair_model_passes():
    df = _frame()
    report = evaluate_model(
        _Fixed((df["y"] == "pos").astype(float)),
        df,
        features=["x"],
        target="y",
        positive_label="pos",
        sensitive_features=["g"],
        policy=ValidationPolicy(bootstrap_samples=20),
    )
    assert report.passed, report.reason
    assert report.disparities()["g"]["demographic_parity_difference"] == 0.0


def test_small_group_fails_closed():
    df = pd.concat([_frame(), pd.DataFrame({"x": range(10), "g": ["c"] * 10, "y": ["pos", "neg"] * 5})])
    report = evaluate_model(
        _Fixed((df["y"] == "pos").astype(float)),
        df,
        features=["x"],
        target="y",
        positive_label="pos",
        sensitive_features=["g"],
        policy=ValidationPolicy(bootstrap_samples=0),
    )
    small = next(f for f in report.verdict.problems if f.subject == "g=c")
    assert small.status is GateStatus.NOT_JUDGED and "g=c: 10 test rows < minimum 30" in small.message
    assert report.status is GateStatus.NOT_JUDGED and not report.passed
    # A policy that does not enforce turns violations into warnings, never a group too small to judge.
    lenient = evaluate_model(
        _Fixed((df["y"] == "pos").astype(float)),
        df,
        features=["x"],
        target="y",
        positive_label="pos",
        sensitive_features=["g"],
        policy=ValidationPolicy(bootstrap_samples=0, enforce=False),
    )
    assert lenient.status is GateStatus.NOT_JUDGED


def test_uncomputable_metric_fails_closed():
    # Group a has no positives (TPR undefined) and nobody is selected (DP ratio 0/0): both fail closed.
    df = pd.DataFrame({"x": range(100), "g": ["a"] * 50 + ["b"] * 50, "y": ["neg"] * 99 + ["pos"]})
    scores = np.zeros(100)
    report = evaluate_model(
        _Fixed(scores),
        df,
        features=["x"],
        target="y",
        positive_label="pos",
        sensitive_features=["g"],
        policy=ValidationPolicy(bootstrap_samples=0, min_accuracy=0.5, min_roc_auc=0.4),
    )
    assert report.overall["roc_auc"] == 0.5
    assert not report.passed and report.status is GateStatus.NOT_JUDGED
    assert {f.message for f in report.verdict.problems} == {
        "g=a: 0 positives < minimum 10: its true-positive rate is too small to judge (equalized odds is taken "
        "without it)",
        "g=b: 1 positive < minimum 10: its true-positive rate is too small to judge (equalized odds is taken "
        "without it)",
        "g demographic parity ratio: a ratio with a zero side says nothing (a, b selected no one); the difference "
        "judges the gap (fails closed)",
        "g equalized odds difference: fewer than two groups have enough positives and negatives to judge it "
        "(fails closed)",
    }


def test_the_explanation_verdict_is_part_of_the_validation_stage():
    from kfp_rai.core.verdict import Finding, Verdict

    df = _frame()
    flagged = Verdict.judge(
        [Finding("explainability.max_sensitive_share", "sensitive features", GateStatus.FAILED, "sex carries 40%")],
        summary="",
    )
    report = evaluate_model(
        _Fixed((df["y"] == "pos").astype(float)),
        df,
        features=["x"],
        target="y",
        positive_label="pos",
        sensitive_features=["g"],
        policy=ValidationPolicy(bootstrap_samples=0),
        explanation=flagged,
    )
    assert report.status is GateStatus.FAILED and "sex carries 40%" in report.reason


def _fairness(cells, min_group_size=30):
    from kfp_rai.stats.groups import GroupCounts
    from kfp_rai.validation._metrics import fairness_from_counts

    counts = GroupCounts("sex", ("Female", "Male"), np.array(cells))
    return fairness_from_counts(
        counts, aucs=[0.8, 0.8], gated=True, intersectional=False, n_boot=500, confidence=0.95, seed=0,
        min_group_size=min_group_size,
    )  # fmt: skip


def test_a_group_too_small_to_judge_gets_no_interval_never_a_zero_width_one():
    from kfp_rai.policy import ValidationPolicy
    from kfp_rai.validation import judge_validation

    f = _fairness([[15, 0, 6, 0], [400, 60, 80, 160]])  # 21 women, none predicted positive
    small, large = f.groups
    assert small.too_small and small.intervals == {} and not large.too_small
    assert large.intervals["selection_rate"][0] < large.selection_rate < large.intervals["selection_rate"][1]
    unguarded = _fairness([[15, 0, 6, 0], [400, 60, 80, 160]], min_group_size=0).groups[0]
    # Without the guard, no selection among 21 rows: every resample says 0.000-0.000; Wilson's interval does not.
    low, high = unguarded.intervals["selection_rate"]
    assert low == 0.0 and high == pytest.approx(wilson_interval(0, 21, 0.95)[1]) and high > 0.1
    overall = {"accuracy": 0.9, "roc_auc": 0.9}
    verdict = judge_validation(overall, {}, [f], ValidationPolicy())
    assert verdict.status is not GateStatus.PASSED and "sex=Female: 21 test rows < minimum 30" in verdict.reason


def test_the_policy_can_judge_a_limit_on_the_interval_instead_of_the_point():
    from kfp_rai.policy import ValidationPolicy
    from kfp_rai.validation import validation_findings

    # selection rates 0.30 and 0.37 on 300 rows each: the difference 0.07 is under 0.1, its interval is not
    f = _fairness([[140, 60, 70, 30], [120, 71, 69, 40]])
    dpd = f.demographic_parity_difference
    low, high = f.intervals["demographic_parity_difference"]
    assert dpd < 0.1 < high
    overall, ci = {"accuracy": 0.9, "roc_auc": 0.9}, {"accuracy": (0.88, 0.92)}

    def finding(judge_on):
        found = validation_findings(overall, ci, [f], ValidationPolicy(judge_on=judge_on))
        return next(x for x in found if x.rule == "validation.max_demographic_parity_difference")

    assert finding("point").status is GateStatus.PASSED
    strict = finding("interval")
    assert strict.status is GateStatus.FAILED and "upper end of its interval" in strict.message
    no_interval = validation_findings(overall, {}, [f], ValidationPolicy(judge_on="interval"))
    accuracy = next(x for x in no_interval if x.rule == "validation.min_accuracy")
    assert accuracy.status is GateStatus.NOT_JUDGED  # no interval to judge on: fails closed


def test_overall_roc_auc_has_an_interval_and_a_tiny_group_does_not_undefine_equalized_odds():
    from kfp_rai.validation import attribute_fairness, overall_metrics

    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 2, n)
    scores = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    pred = (scores >= 0.5).astype(np.int64)
    values, intervals = overall_metrics(y, pred, scores, n_boot=200, confidence=0.95, seed=0)
    assert intervals["roc_auc"][0] < values["roc_auc"] < intervals["roc_auc"][1]
    groups = pd.Series(np.where(np.arange(n) < 10, "tiny", rng.choice(["a", "b"], n)))
    y_tiny = np.where(np.arange(n) < 10, 0, y)  # the tiny group has no positive: its TPR is undefined
    f = attribute_fairness(
        "g", groups, y_tiny, pred, scores, gated=True, intersectional=False, n_boot=50, confidence=0.95, seed=0,
        min_group_size=30,
    )  # fmt: skip
    assert np.isfinite(f.equalized_odds_difference)


def test_small_counts_get_honest_intervals_and_rates_from_too_few_cases_are_not_judged():
    from kfp_rai.policy import ValidationPolicy
    from kfp_rai.stats.groups import GroupCounts
    from kfp_rai.validation import validation_findings
    from kfp_rai.validation._metrics import fairness_from_counts

    # The group: 32 test rows, one positive label, nobody selected; beside a large group.
    cells = np.array([[31, 0, 1, 0], [4000, 300, 500, 1200]])  # TN, FP, FN, TP
    f = fairness_from_counts(
        GroupCounts("sex × race", ("Female × Amer-Indian-Eskimo", "Male × White"), cells), aucs=[0.5, 0.8],
        gated=True, intersectional=True, n_boot=500, confidence=0.95, seed=0, min_group_size=30,
        min_positives=10, min_negatives=10,
    )  # fmt: skip
    small, large = f.groups
    # never zero-width: the selection rate 0 of 32 gets Wilson's 0.000-0.107, not the bootstrap's 0.000-0.000
    assert small.intervals["selection_rate"] == pytest.approx(wilson_interval(0, 32, 0.95))
    assert small.intervals["selection_rate"][1] > 0.1
    assert all(high > low for low, high in small.intervals.values())
    # a TPR from one positive is too small to judge, with the count; the large group's is judged
    assert (
        small.unjudged["true_positive_rate"] == "1 positive < minimum 10"
        and "false_positive_rate" not in small.unjudged
    )
    assert large.unjudged == {}
    # no ratio with a zero side, no equalized odds from one group
    assert np.isnan(f.demographic_parity_ratio) and "demographic_parity_ratio" not in f.intervals
    assert np.isnan(f.equalized_odds_difference)
    assert f.demographic_parity_difference == pytest.approx(1500 / 6000)  # the gap is still judged
    findings = {x.rule: x for x in validation_findings({"accuracy": 0.9, "roc_auc": 0.9}, {}, [f], ValidationPolicy())}
    assert findings["validation.min_positives"].status is GateStatus.NOT_JUDGED
    assert "Female × Amer-Indian-Eskimo: 1 positive < minimum 10" in findings["validation.min_positives"].message
    assert "zero side" in findings["validation.min_demographic_parity_ratio"].message
    assert findings["validation.max_demographic_parity_difference"].status is GateStatus.FAILED


def _fpr_frame():
    """Groups a and b of 200 rows (half positive, every positive scored 0.9) and c of 10: a's negatives
    scored 0.1, b's half 0.6 (selected: FPR 0.5), half 0.2."""
    y = np.array(["pos", "neg"] * 205)
    g = np.array(["a"] * 200 + ["b"] * 200 + ["c"] * 10)
    neg_b = (g == "b") & (y == "neg")
    scores = np.where(y == "pos", 0.9, 0.1)
    scores[np.flatnonzero(neg_b)[::2]] = 0.6
    scores[np.flatnonzero(neg_b)[1::2]] = 0.2
    return pd.DataFrame({"x": range(len(y)), "g": g, "y": y}), scores


def test_fpr_is_charted_against_a_ceiling_and_each_group_keeps_its_confusion_cells_and_roc_curve():
    from kfp_rai.core.report import STATUS_COLOURS
    from kfp_rai.validation._roc import GROUP_ROC_POINTS

    df, scores = _fpr_frame()
    report = evaluate_model(
        _Fixed(scores), df, features=["x"], target="y", positive_label="pos", sensitive_features=["g"],
        policy=ValidationPolicy(bootstrap_samples=20, min_accuracy=0.5),
    )  # fmt: skip
    a, b, c = report.fairness[0].groups
    # The cells are each group's rows, and every rate is their ratio.
    for group in (a, b, c):
        tn, fp, fn, tp = group.cells
        assert tn + fp + fn + tp == group.count
        assert group.false_positive_rate == fp / (fp + tn) and group.true_positive_rate == tp / (tp + fn)
        assert group.selection_rate == (tp + fp) / group.count
    assert b.cells == (50, 50, 0, 100) and a.cells == (100, 0, 0, 100)
    # FPR's bound is a ceiling: b's 0.5 lies above a's 0.0 + 0.1, so b is drawn failed, a passed; c is
    # too small to be compared. TPR (1.0 for both) has nothing failed.
    sel, tpr, fpr = report._charts(report.fairness[0])
    failed = STATUS_COLOURS[GateStatus.FAILED]
    assert failed in fpr.svg and failed not in tpr.svg and "false positive rate" in fpr.svg
    assert "a higher FPR is worse" in fpr.caption and "lowest + 0.1" in fpr.svg
    # One ROC curve per judged group, bounded, from (0, 0) to (1, 1); the small group has none, and the
    # chart's caption says why it is left out.
    assert c.too_small and c.roc == {} and not c.judged_roc
    for group in (a, b):
        assert 2 <= len(group.roc["fpr"]) <= GROUP_ROC_POINTS
        assert (group.roc["fpr"][0], group.roc["tpr"][0]) == (0.0, 0.0)
        assert (group.roc["fpr"][-1], group.roc["tpr"][-1]) == (1.0, 1.0)
        assert np.all(np.diff(group.roc["fpr"]) >= 0) and np.all(np.diff(group.roc["tpr"]) >= 0)
    roc = report._roc_chart(report.fairness[0])
    assert "c (10 < 30 rows)" in roc.caption and "a (AUC 1.000)" in roc.svg and "c (AUC" not in roc.svg
    # The report shows the counts: the overall matrix with totals, and each group's cells.
    md = report.to_markdown()
    assert "| actual negative | 155 | 50 | 205 |" in md and "| total | 155 | 255 | 410 |" in md
    assert "| b | 200 | 50 | 50 | 0 | 100 | 100 | 100 | 150 |" in md
    data = report.to_dict()
    assert data["fairness"][0]["groups"][1]["cells"] == [50, 50, 0, 100]
    assert data["fairness"][0]["groups"][2]["roc"] == {}


def test_the_scored_path_keeps_each_groups_roc_curve_from_its_score_histogram():
    import pyarrow as pa

    from kfp_rai.validation._metrics import safe_roc_auc
    from kfp_rai.validation._scored import ScoredColumns, count_batch, judge_scored

    df, scores = _fpr_frame()
    y = (df["y"] == "pos").to_numpy()
    table = pa.table({"y": y, "p": scores >= 0.5, "s": scores, "g": df["g"]})
    columns = ScoredColumns("y", "p", ("g",), score="s")
    report = judge_scored(count_batch(table, columns), columns, ValidationPolicy(bootstrap_samples=0))
    for group in report.fairness[0].groups[:2]:
        rows = (df["g"] == group.group).to_numpy()
        area = np.trapezoid(group.roc["tpr"], group.roc["fpr"])
        assert area == pytest.approx(safe_roc_auc(y[rows].astype(int), scores[rows]), abs=1e-3)
        assert sum(group.cells) == group.count == rows.sum()
    assert report.fairness[0].groups[2].roc == {}


def test_a_group_the_limits_do_not_compare_never_sets_the_bound_others_are_coloured_against():
    """A chart's bound is relative to the best-off group *the gate compares*: a group too small to
    judge (selection rate 1.0 on 5 rows) or whose TPR is not judged cannot lift it and redden the rest."""
    from kfp_rai.validation._metrics import AttributeFairness, GroupMetrics
    from kfp_rai.validation._report import _compared

    def group(name, count, rate, tpr, **kw):
        return GroupMetrics(name, count, 0.8, rate, tpr, 0.1, 0.8, {}, **kw)

    f = AttributeFairness(
        "a", False, True,
        (
            group("big", 500, 0.30, 0.70),
            group("mid", 400, 0.25, 0.65),
            group("tiny", 5, 1.00, 1.00, too_small=True),
            group("few-positives", 100, 0.90, 0.99, unjudged={"true_positive_rate": "3 positives < minimum 10"}),
        ),
        0.05, 0.83, 0.05, {},
    )  # fmt: skip
    assert [g.group for g in _compared(f, "selection_rate")] == ["big", "mid", "few-positives"]
    assert [g.group for g in _compared(f, "true_positive_rate")] == ["big", "mid"]
    assert max(g.true_positive_rate for g in _compared(f, "true_positive_rate")) == 0.70


def test_a_limit_failed_on_its_interval_is_never_drawn_all_green(adult_split, adult_model):
    """judge_on: interval fails the sex parity difference on its interval's far end while the measured
    difference lies within the limit: the chart colours the worst-off group as failed and says why."""
    _, test = adult_split
    model, summary = adult_model
    args = dict(features=summary.features, target="income", positive_label=">50K", sensitive_features=SENSITIVE)
    point = evaluate_model(model, test, **args).disparities()["sex"]["demographic_parity_difference"]
    policy = ValidationPolicy(
        judge_on="interval",
        max_demographic_parity_difference=round(point + 0.002, 4),  # above the value, below its interval's end
        min_demographic_parity_ratio=0.0,
        max_equalized_odds_difference=1.0,
    )
    report = evaluate_model(model, test, policy=policy, **args)
    finding = next(
        x for x in report.verdict.findings if x.subject == "sex" and x.rule.endswith("demographic_parity_difference")
    )
    assert finding.status is GateStatus.FAILED and finding.observed < policy.max_demographic_parity_difference
    sex = next(f for f in report.fairness if f.attribute == "sex")
    selection = report._charts(sex)[0]
    assert "Female is coloured failed: the gate judged the interval's least favourable end" in selection.caption
    red = STATUS_COLOURS[GateStatus.FAILED]
    assert red in selection.svg.lower()
    # Judged on the point value the same limit holds: nothing is red.
    valued = evaluate_model(model, test, policy=replace(policy, judge_on="point"), **args)
    assert red not in valued._charts(next(f for f in valued.fairness if f.attribute == "sex"))[0].svg.lower()
