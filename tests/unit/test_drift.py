import numpy as np
import pandas as pd
import pytest

from kfp_rai.core.verdict import GateStatus
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import DriftPolicy
from kfp_rai.refresh import detect_drift, population_stability_index


def test_psi_is_zero_for_same_data_and_large_for_a_shift():
    x = np.random.default_rng(0).normal(size=5000)
    assert population_stability_index(x, x) == pytest.approx(0.0, abs=1e-12)
    assert population_stability_index(x, x + 1.0) > 0.5


def test_adult_train_vs_test_has_no_drift_and_a_shift_is_caught(adult):
    from kfp_rai.core.tables import read_table

    current = read_table("bundled:adult-test")
    assert not detect_drift(adult, current).drift_detected
    shifted = current.assign(age=current["age"] + 15, sex="Female")
    report = detect_drift(adult, shifted)
    assert report.drift_detected and set(report.drifted_columns) == {"age", "sex"}
    assert report.status is GateStatus.WARNING and report.passed  # drift is a warning: retrain, never green
    assert "age: PSI" in report.reason and "**Verdict: WARNING**" in report.to_markdown()
    html = report.to_html()
    assert '<div class="verdict status-warning"' in html and html.count("<svg") == len(report.columns)
    age = next(c for c in report.columns if c.column == "age")
    assert sum(age.reference_shares) == pytest.approx(1) and sum(age.current_shares) == pytest.approx(1)


def test_categorical_needs_significance_and_size():
    ref = pd.DataFrame({"c": ["a"] * 5000 + ["b"] * 5000})
    small_shift = pd.DataFrame({"c": ["a"] * 5300 + ["b"] * 4700})  # significant, but small
    assert not detect_drift(ref, small_shift).drift_detected
    assert detect_drift(ref, pd.DataFrame({"c": ["a"] * 9000 + ["b"] * 1000})).drift_detected


def test_too_few_rows_cannot_show_drift():
    ref = pd.DataFrame({"x": range(1000)})
    report = detect_drift(ref, pd.DataFrame({"x": [5000] * 10}), policy=DriftPolicy(min_samples=100))
    assert not report.drift_detected and "too few" in report.reason
    assert report.judged is False and report.status is GateStatus.NOT_JUDGED and not report.passed
    assert "NOT JUDGED" in report.to_markdown()


def test_missing_columns_are_refused():
    with pytest.raises(DataValidationError, match="not in both"):
        detect_drift(pd.DataFrame({"x": [1]}), pd.DataFrame({"y": [1]}), columns=["x"])


def test_a_column_on_one_side_only_is_not_judged_never_skipped(adult):
    from kfp_rai.core.tables import read_table
    from kfp_rai.refresh import reference_summary

    current = read_table("bundled:adult-test")
    stored = reference_summary(adult.drop(columns=["capital-gain"]))  # a stored reference without one column
    shifted = current.assign(**{"capital-gain": current["capital-gain"] * 50})
    report = detect_drift(stored, shifted)
    assert report.status is GateStatus.NOT_JUDGED and not report.passed
    (finding,) = [f for f in report.verdict.findings if f.subject == "capital-gain"]
    assert finding.rule == "drift.column_not_in_reference" and "cannot be judged" in finding.message
    # The reverse, already: a reference column the current data lacks.
    report = detect_drift(reference_summary(adult), current.drop(columns=["age"]))
    assert report.status is GateStatus.NOT_JUDGED
    assert [f.rule for f in report.verdict.findings if f.subject == "age"] == ["drift.column_missing"]
    # A column the reference left out on purpose (an identifier) stays out, stored or not.
    without_ids = reference_summary(adult, identifier_columns=["fnlwgt"])
    assert without_ids.left_out == ("fnlwgt",)
    from kfp_rai.stats.summary import DataSummary

    assert DataSummary.from_dict(without_ids.to_dict()).left_out == ("fnlwgt",)
    assert detect_drift(without_ids, current).status is GateStatus.PASSED
    # Named identifiers, or columns chosen with `columns`, are the caller's say.
    assert detect_drift(stored, shifted, identifier_columns=["capital-gain"]).status is not GateStatus.NOT_JUDGED
    assert detect_drift(stored, shifted, columns=["age"]).status is not GateStatus.NOT_JUDGED


def test_the_reference_stored_with_a_model_is_verified_before_use(adult, tmp_path):
    import json

    from kfp_rai.core.model_dir import REFERENCE_FILE, save_model_dir
    from kfp_rai.errors import DataValidationError, IntegrityError
    from kfp_rai.refresh import reference_summary, stored_reference

    stored = reference_summary(adult.head(2000))
    with_summary, without = tmp_path / "with", tmp_path / "without"
    model = {"weights": [1, 2, 3]}  # any skops-serializable object stands for the model here
    save_model_dir(model, with_summary, {"name": "m"}, {REFERENCE_FILE: json.dumps(stored.to_dict()).encode()})
    save_model_dir(model, without, {"name": "m"})
    back, meta = stored_reference(with_summary)
    assert back.to_dict() == stored.to_dict() and meta["name"] == "m"
    assert stored_reference(without, required=False)[0] is None
    with pytest.raises(DataValidationError, match="holds no reference_summary.json"):
        stored_reference(without)
    (with_summary / REFERENCE_FILE).write_text(json.dumps({**stored.to_dict(), "rows": 1}))
    with pytest.raises(IntegrityError):
        stored_reference(with_summary)  # a changed reference is refused, never used


def test_refresh_uses_the_stored_summary_and_reads_reference_data_only_without_one(adult, tmp_path):
    import json

    from kfp_rai.core.model_dir import REFERENCE_FILE, save_model_dir
    from kfp_rai.errors import DataValidationError
    from kfp_rai.refresh import choose_reference, reference_summary
    from kfp_rai.stats.summary import DataSummary

    stored = reference_summary(adult.head(2000))
    meta = {"name": "m", "training_data_sha256": "abc"}
    save_model_dir({"w": 1}, tmp_path / "with", meta, {REFERENCE_FILE: json.dumps(stored.to_dict()).encode()})
    save_model_dir({"w": 1}, tmp_path / "without", meta)
    adult.head(2000).to_parquet(tmp_path / "ref")  # a kfp artifact path: no suffix
    data_meta = {"sha256": "def", "identifier_columns": ["id"]}
    # the model's summary wins: the reference data is not even opened
    chosen = choose_reference(
        model_dir=tmp_path / "with", model_sha256=None, reference_path=tmp_path / "nope", reference_meta=data_meta
    )
    assert isinstance(chosen.reference, DataSummary) and chosen.reference_sha256 == "abc"
    fallback = choose_reference(
        model_dir=tmp_path / "without", model_sha256=None, reference_path=tmp_path / "ref", reference_meta=data_meta
    )
    assert not isinstance(fallback.reference, DataSummary) and fallback.identifier_columns == ("id",)
    assert fallback.reference_sha256 == "def" and fallback.model_meta["name"] == "m"
    with pytest.raises(DataValidationError, match="no reference"):
        choose_reference(model_dir=None, model_sha256=None, reference_path=None, reference_meta={})


def _shapes(rng, n):
    """One reference column per shape a numeric column takes."""
    return {
        "zero_inflated": np.where(rng.random(n) < 0.92, 0.0, rng.lognormal(8, 1, n)),
        "capped": np.minimum(rng.normal(40, 12, n).round(), 60.0),  # ~5% at the cap
        "few_valued": rng.choice([1.0, 2.0, 3.0], n, p=[0.6, 0.3, 0.1]),
        "continuous": rng.normal(size=n),
    }


@pytest.mark.parametrize(
    ("column", "shift"),
    [
        ("zero_inflated", lambda x, rng: np.where(rng.random(x.size) < 0.65, 0.0, rng.lognormal(8, 1, x.size))),
        ("capped", lambda x, rng: np.minimum(x + 0, 50.0)),  # the cap moves down: a new mass point
        ("few_valued", lambda x, rng: rng.choice([1.0, 2.0, 3.0], x.size, p=[0.3, 0.3, 0.4])),
        ("continuous", lambda x, rng: x + 0.5),
    ],
)
def test_every_shape_of_numeric_column_shows_its_drift(column, shift):
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(_shapes(rng, 20_000))
    unchanged = detect_drift(reference, pd.DataFrame(_shapes(np.random.default_rng(1), 5_000)))
    assert not unchanged.drift_detected, unchanged.reason  # the same process: no drift, at any shape
    current = pd.DataFrame(_shapes(np.random.default_rng(2), 5_000))
    current[column] = shift(current[column].to_numpy(), np.random.default_rng(3))
    report = detect_drift(reference, current)
    assert report.drifted_columns == (column,), report.reason
    finding = next(f for f in report.verdict.findings if f.subject == column)
    assert finding.rule == "drift.psi_threshold" and finding.status is GateStatus.WARNING


def test_the_zero_inflated_column_of_the_issue_moves_its_psi_and_its_bins_keep_the_zeros_apart(adult):
    current = adult.sample(10_000, random_state=0)
    nonzero = current["capital-gain"] > 0
    raise_share = current.index[~nonzero][: int(0.29 * len(current))]  # 8% -> 35% non-zero
    current.loc[raise_share, "capital-gain"] = 5_000
    report = detect_drift(adult, current)
    gain = next(c for c in report.columns if c.column == "capital-gain")
    assert "= 0" in gain.bins and gain.drifted and gain.statistic > 0.2


def test_distances_count_only_above_their_noise_and_never_on_sample_size_alone():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=200_000)})
    # A tiny shift with many rows: significant, but below the effect-size thresholds.
    tiny = detect_drift(reference, pd.DataFrame({"x": rng.normal(0.02, 1, 200_000)}))
    assert not tiny.drift_detected, tiny.reason
    # A large shift in distribution shape that PSI's ten bins barely see (variance only) is caught by D/W.
    wide = pd.DataFrame({"x": rng.normal(0, 1.8, 20_000)})
    report = detect_drift(reference, wide, policy=DriftPolicy(psi_threshold=10.0))
    (finding,) = report.verdict.findings
    assert report.drift_detected and finding.rule == "drift.ks_threshold", finding
    # 150 rows 0.3 sd off (evenly spread, no chance involved): D ~ 0.12 and W 0.3 sd pass their thresholds,
    # yet stay inside the noise 150 rows make (~0.16): not counted. Without the noise bound both would fire.
    from scipy.stats import norm

    few = pd.DataFrame({"x": norm.ppf((np.arange(150) + 0.5) / 150) + 0.3})
    report = detect_drift(reference, few, policy=DriftPolicy(psi_threshold=10.0))
    column = report.columns[0]
    assert 0.1 <= column.distance < 0.16 and column.wasserstein >= 0.2 and not report.drift_detected


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (np.full(1000, 7.0), "constant in the reference (7 on every row)"),
        (np.full(1000, np.nan), "every reference value is missing"),
    ],
)
def test_a_constant_or_missing_reference_column_is_not_judged_with_its_reason(values, fragment):
    reference = pd.DataFrame({"x": values, "y": np.arange(1000.0)})
    current = pd.DataFrame({"x": np.r_[np.full(500, 7.0), np.full(500, 9.0)], "y": np.arange(1000.0)})
    report = detect_drift(reference, current)
    assert report.status is GateStatus.NOT_JUDGED and not report.passed
    (finding,) = [f for f in report.verdict.findings if f.subject == "x"]
    assert finding.status is GateStatus.NOT_JUDGED and fragment in finding.message
