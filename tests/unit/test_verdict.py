"""The verdict types: the one combination rule every gate shares, and what it says."""

from kfp_rai.core.verdict import Finding, GateStatus, Verdict

F, N, W, P = GateStatus.FAILED, GateStatus.NOT_JUDGED, GateStatus.WARNING, GateStatus.PASSED


def _f(status, message="m", rule="r"):
    return Finding(rule, message, status, message)


def test_the_worst_finding_decides_and_every_problem_is_named():
    verdict = Verdict.judge([_f(P, "a"), _f(F, "b fails"), _f(N, "c unmeasurable")], summary="fine")
    assert verdict.status is F and not verdict.passed
    assert verdict.reason == "1 failed and 1 not judged of 3 checks: b fails; c unmeasurable"
    assert [f.message for f in verdict.problems] == ["b fails", "c unmeasurable"]


def test_a_gate_that_checked_nothing_is_not_judged():
    verdict = Verdict.judge([], summary="every group within policy")
    assert verdict.status is N and not verdict.passed and "nothing was checked" in verdict.reason


def test_a_policy_that_does_not_enforce_turns_failures_into_warnings_only():
    warned = Verdict.judge([_f(F, "b fails"), _f(P)], summary="", enforce=False)
    assert warned.status is W and warned.passed
    assert warned.reason.startswith("violations recorded as warnings (the policy does not enforce this gate): ")
    unmeasured = Verdict.judge([_f(F, "b fails"), _f(N, "c unmeasurable")], summary="", enforce=False)
    assert unmeasured.status is N and not unmeasured.passed
    assert unmeasured.reason.startswith("1 not judged and 1 warning of 2 checks")  # never reads as benign


def test_combined_verdicts_count_every_finding():
    a = Verdict.judge([_f(F, "x"), _f(P), _f(P)], summary="")
    b = Verdict.judge([_f(P, "y")], summary="")
    combined = Verdict.combine([a, b], summary="all good")
    assert combined.status is F and combined.reason == "1 of 4 checks failed: x" and len(combined.findings) == 4
    assert Verdict.combine([b, b], summary="all good").reason == "all good"
    empty = Verdict.combine([b, Verdict.judge([], summary="nothing")], summary="all good")
    assert empty.status is N and "nothing was checked" in empty.reason


def test_round_trip_through_json():
    verdict = Verdict.judge([Finding("r", "s", F, "m", observed=0.5, limit=0.8, interval=(0.4, 0.6))], summary="")
    assert Verdict.from_dict(verdict.to_dict()) == verdict
