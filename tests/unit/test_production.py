import pytest

from kfp_rai.core.model_dir import load_model, load_model_dir, save_model, save_model_dir
from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.production import ModelRegistry, build_model_card


def test_skops_round_trip_and_tamper_detection(tmp_path, adult_model, adult_split):
    model, summary = adult_model
    _, test = adult_split
    sha = save_model(model, tmp_path / "m.skops")
    loaded = load_model(tmp_path / "m.skops", expected_sha256=sha)
    X = test[list(summary.features)].head(50)
    assert (loaded.predict_proba(X) == model.predict_proba(X)).all()
    data = bytearray((tmp_path / "m.skops").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "m.skops").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="was changed after it was written"):
        load_model(tmp_path / "m.skops", expected_sha256=sha)
    with pytest.raises(IntegrityError, match="no expected sha256"):
        load_model(tmp_path / "m.skops", expected_sha256="")


def test_model_dir_refuses_disagreeing_hashes(tmp_path, adult_model):
    meta = save_model_dir(adult_model[0], tmp_path / "model", {"features": ["a"]})
    _, loaded_meta = load_model_dir(tmp_path / "model", meta["sha256"])
    assert loaded_meta["features"] == ["a"] and loaded_meta["format"] == "skops"
    with pytest.raises(IntegrityError, match="differs"):
        load_model_dir(tmp_path / "model", "0" * 64)


def test_registry_versions_and_verification(tmp_path):
    registry = ModelRegistry(str(tmp_path / "reg"))
    first = registry.register("m", model=b"one", model_card="# card", metadata={"features": ["a"]})
    second = registry.register("m", model=b"two", model_card="# card", metadata={})
    assert (first.version, second.version) == ("1", "2")
    assert registry.versions("m") == ["1", "2"]
    assert (tmp_path / "reg" / "m" / "2" / "model_card.md").read_text() == "# card"
    assert registry.get("m", "1").metadata["features"] == ["a"]
    (tmp_path / "reg" / "m" / "3").mkdir()  # a crashed registration: no metadata.json
    assert registry.versions("m") == ["1", "2"]
    assert registry.register("m", model=b"four", model_card="", metadata={}).version == "4"
    (tmp_path / "reg" / "m" / "1" / "model.skops").write_bytes(b"evil")
    with pytest.raises(IntegrityError):
        registry.get("m", "1")
    with pytest.raises(InvalidParameterError, match="not valid"):
        registry.register("Bad Name", model=b"", model_card="", metadata={})
    with pytest.raises(IntegrityError):
        registry.register("m", model=b"three", model_card="", metadata={"sha256": "0" * 64})


def test_registration_refuses_blocked_or_foreign_cards():
    from kfp_rai.errors import GateFailedError
    from kfp_rai.production import check_registrable

    check_registrable({"eligible": True, "status": "passed", "model_sha256": "ab"}, "ab")
    check_registrable({"eligible": True, "status": "warning", "model_sha256": "ab"}, "ab")
    with pytest.raises(GateFailedError, match="blocked: DP ratio"):
        check_registrable({"eligible": False, "status": "failed", "model_sha256": "ab", "reason": "DP ratio"}, "ab")
    for status in ("failed", "not_judged", None, "PASSED"):  # the status must agree, or it fails closed
        with pytest.raises(GateFailedError):
            check_registrable({"eligible": True, "status": status, "model_sha256": "ab"}, "ab")
    with pytest.raises(IntegrityError, match="different model"):
        check_registrable({"eligible": True, "status": "passed", "model_sha256": "cd"}, "ab")


def test_parallel_registrations_get_distinct_versions(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    registry = ModelRegistry(str(tmp_path))
    with ThreadPoolExecutor(8) as pool:
        versions = list(
            pool.map(lambda i: registry.register("m", model=bytes([i]), model_card="", metadata={}).version, range(16))
        )
    assert sorted(versions, key=int) == [str(i) for i in range(1, 17)]


def _report(status, reason, *findings):
    from kfp_rai.core.verdict import Finding, GateStatus, Verdict

    made = [Finding(rule, subject, GateStatus(st), msg) for rule, subject, st, msg in findings]
    return Verdict(GateStatus(status), reason, tuple(made)).to_dict()


def test_model_card_blocks_unless_every_gate_passed():
    from kfp_rai.core.verdict import GateStatus

    meta = {
        "framework": "sklearn",
        "estimator": "HGB",
        "features": ["a"],
        "sha256": "ab" * 32,
        "rows": 10,
        "target": "y",
        "positive_label": "1",
        "positive_rate": 0.5,
        "seed": 0,
        "training_verdict": _report("passed", "trained"),
    }
    ok = _report("passed", "fine")
    explained = _report("passed", "top features: a", ("explainability.max_sensitive_share", "s", "passed", "0%"))
    card = build_model_card(
        model_name="m",
        model_metadata=meta,
        representativeness=ok,
        validation=_report("failed", "DP ratio 0.3 < 0.8"),
        explanation=explained,
        intended_use="tests",
    )
    assert not card.eligible and card.status is GateStatus.FAILED
    assert card.reason == "blocked by the validation gate: validation: DP ratio 0.3 < 0.8"
    text = card.to_markdown()
    assert "**Verdict: BLOCKED**" in text and "## Lineage" in text
    assert "any use while this card is BLOCKED." in text
    assert '<div class="verdict status-failed"' in card.to_html()  # a blocked card is never green

    card = build_model_card(
        model_name="m",
        model_metadata=meta,
        representativeness=ok,
        validation=_report("warning", "recorded as warnings: x"),
        explanation=explained,
        intended_use="tests",
    )
    assert card.eligible and card.status is GateStatus.WARNING
    # The headline names what was recorded, never "every gate passed" beside violations.
    assert card.reason == (
        "eligible, with violations recorded as warnings by 1 gate under the policy's written exceptions: "
        "validation: recorded as warnings: x"
    )
    assert '<div class="verdict status-warning"' in card.to_html()
    text = card.to_markdown()
    assert "every gate passed" not in text and "while this card is BLOCKED" not in text  # it is not blocked
    assert "| fairness mitigation | none |" in text  # said, whether or not one ran
    # Who answers for it: as the policy's card section says, and "not stated" where it says nothing.
    assert "| owner | not stated (the policy's card.owner) |" in text and "| citation | m, model card by" in text
    from kfp_rai.policy import Policy

    said = Policy.from_dict({"card": {"owner": "Risk ML team", "contact": "risk-ml@example.org"}}).card.to_dict()
    card = build_model_card(
        model_name="m", model_metadata=meta, representativeness=ok, validation=_report("passed", "fine"),
        explanation=explained, intended_use="tests", accountability=said,
    )  # fmt: skip
    text = card.to_markdown()
    assert "| owner | Risk ML team |" in text and "| contact | risk-ml@example.org |" in text
    assert "| licence | not stated (the policy's card.licence) |" in text
    assert type(card).from_dict(card.to_dict()).accountability == said  # kept when the registry renders it again

    # The validation verdict was judged without the explanation: the card checks it on its own.
    card = build_model_card(
        model_name="m",
        model_metadata=meta,
        representativeness=ok,
        validation=_report(
            "failed",
            "2 of 2 checks failed: sex DP ratio 0.3; race EO 0.31",
            ("validation.min_demographic_parity_ratio", "sex", "failed", "sex DP ratio 0.3"),
            ("validation.max_equalized_odds_difference", "race", "failed", "race EO 0.31"),
        ),
        explanation=_report("failed", "sensitive features carry 30%"),
        intended_use="tests",
    )
    assert not card.eligible and "explainability: sensitive features carry 30%" in card.reason
    text = card.to_markdown()
    assert "sex DP ratio 0.3" in text and "race EO 0.31" in text  # every finding, in full

    # A report without a verdict is not judged: the card blocks.
    card = build_model_card(
        model_name="m",
        model_metadata=meta,
        representativeness={},
        validation=ok,
        explanation=explained,
        intended_use="tests",
    )
    assert not card.eligible and "discovery: no verdict was recorded" in card.reason


def test_a_model_whose_training_failed_or_was_never_judged_is_blocked():
    from kfp_rai.core.verdict import GateStatus

    meta = {"features": ["a"], "sha256": "ab" * 32}
    ok = _report("passed", "fine")
    explained = _report("passed", "top features: a", ("explainability.max_sensitive_share", "s", "passed", "0%"))
    degenerate = _report("failed", "the model predicts '<=50K' for every one of 10 training rows")
    card = build_model_card(
        model_name="m",
        model_metadata={**meta, "training_verdict": degenerate},
        representativeness=ok,
        validation=_report("warning", "recorded"),
        explanation=explained,
        intended_use="tests",
    )
    assert not card.eligible and card.status is GateStatus.FAILED
    assert card.reason.startswith("blocked by the training gate: training: the model predicts")
    unjudged = build_model_card(
        model_name="m",
        model_metadata=meta,
        representativeness=ok,
        validation=ok,
        explanation=explained,
        intended_use="tests",
    )
    assert not unjudged.eligible and "training: no verdict was recorded" in unjudged.reason
