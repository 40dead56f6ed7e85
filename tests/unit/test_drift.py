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
