"""The validation gate's rules: each policy limit checked against the measured metrics, as findings.

Fail closed: a metric that cannot be computed, or a group smaller than the policy's minimum, is
not judged, and a gate with anything not judged does not pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.policy import ValidationPolicy
from kfp_rai.validation._metrics import AttributeFairness


def _limit(
    rule: str,
    subject: str,
    label: str,
    value: float,
    limit: float,
    *,
    at_least: bool,
    interval: tuple[float, float] | None = None,
    judge_on: str = "point",
    undefined: str = "cannot be computed",
) -> Finding:
    """One limit checked: on the value, or (``judge_on="interval"``) on the least favourable end of
    its interval — the lower end for a floor, the upper end for a ceiling. No interval to judge on
    is not judged: the gate fails closed rather than fall back to the point."""
    if math.isnan(value):
        return Finding(rule, subject, GateStatus.NOT_JUDGED, f"{label}: {undefined} (fails closed)", limit=limit)
    judged, what = value, ""
    if judge_on == "interval":
        if interval is None:
            return Finding(
                rule,
                subject,
                GateStatus.NOT_JUDGED,
                f"{label}: {value:.3f} has no interval to judge on (the policy judges on intervals; fails closed)",
                observed=value,
                limit=limit,
            )
        judged = interval[0] if at_least else interval[1]
        what = f" ({'lower' if at_least else 'upper'} end of its interval {interval[0]:.3f}-{interval[1]:.3f})"
    ok = judged >= limit if at_least else judged <= limit
    op = (">=" if ok else "<") if at_least else ("<=" if ok else ">")
    return Finding(
        rule,
        subject,
        GateStatus.PASSED if ok else GateStatus.FAILED,
        f"{label}: {judged:.3f}{what} {op} {limit}",
        observed=value,
        limit=limit,
        interval=interval,
    )


def validation_findings(
    overall: Mapping[str, float],
    overall_intervals: Mapping[str, tuple[float, float]],
    fairness: Sequence[AttributeFairness],
    policy: ValidationPolicy,
) -> list[Finding]:
    """One finding per rule and subject: performance floors, group sizes, disparity limits."""
    p = policy
    findings = [
        _limit(
            "validation.min_accuracy",
            "accuracy",
            "accuracy",
            overall["accuracy"],
            p.min_accuracy,
            at_least=True,
            interval=overall_intervals.get("accuracy"),
            judge_on=p.judge_on,
        ),
        _limit(
            "validation.min_roc_auc",
            "roc_auc",
            "ROC AUC",
            overall["roc_auc"],
            p.min_roc_auc,
            at_least=True,
            interval=overall_intervals.get("roc_auc"),
            judge_on=p.judge_on,
        ),
    ]
    if not any(f.gated for f in fairness):
        findings.append(
            Finding(
                "validation.sensitive_features",
                "fairness",
                GateStatus.NOT_JUDGED,
                "no sensitive attribute was measured: fairness cannot be judged",
            )
        )
    for f in fairness:
        if not f.gated:
            continue
        for g in f.groups:
            subject = f"{f.attribute}={g.group}"
            small = g.count < p.min_group_size
            findings.append(
                Finding(
                    "validation.min_group_size",
                    subject,
                    GateStatus.NOT_JUDGED if small else GateStatus.PASSED,
                    f"{subject}: {g.count} test rows"
                    + (f" < minimum {p.min_group_size} (too small to judge)" if small else ""),
                    observed=g.count,
                    limit=p.min_group_size,
                )
            )
            if small:
                continue
            for metric, rule in (("true_positive_rate", "min_positives"), ("false_positive_rate", "min_negatives")):
                if metric in g.unjudged:
                    label = metric.replace("_", " ").replace("true positive", "true-positive")
                    label = label.replace("false positive", "false-positive")
                    findings.append(
                        Finding(
                            f"validation.{rule}",
                            subject,
                            GateStatus.NOT_JUDGED,
                            f"{subject}: {g.unjudged[metric]}: its {label} is too small to judge (equalized odds is "
                            "taken without it)",
                            limit=getattr(p, rule),
                        )
                    )
        a = f.attribute
        zero = [g.group for g in f.groups if not g.too_small and g.selection_rate == 0]
        findings += [
            _limit(
                "validation.max_demographic_parity_difference",
                a,
                f"{a} demographic parity difference",
                f.demographic_parity_difference,
                p.max_demographic_parity_difference,
                at_least=False,
                interval=f.intervals.get("demographic_parity_difference"),
                judge_on=p.judge_on,
            ),
            _limit(
                "validation.min_demographic_parity_ratio",
                a,
                f"{a} demographic parity ratio",
                f.demographic_parity_ratio,
                p.min_demographic_parity_ratio,
                at_least=True,
                interval=f.intervals.get("demographic_parity_ratio"),
                judge_on=p.judge_on,
                undefined=(
                    f"a ratio with a zero side says nothing ({', '.join(zero)} selected no one); the difference judges "
                    "the gap"
                    if zero
                    else "cannot be computed"
                ),
            ),
            _limit(
                "validation.max_equalized_odds_difference",
                a,
                f"{a} equalized odds difference",
                f.equalized_odds_difference,
                p.max_equalized_odds_difference,
                at_least=False,
                interval=f.intervals.get("equalized_odds_difference"),
                judge_on=p.judge_on,
                undefined="fewer than two groups have enough positives and negatives to judge it",
            ),
        ]
    return findings


def judge_validation(
    overall: Mapping[str, float],
    overall_intervals: Mapping[str, tuple[float, float]],
    fairness: Sequence[AttributeFairness],
    policy: ValidationPolicy,
    explanation: Verdict | None = None,
) -> Verdict:
    """The validation stage's verdict: performance and fairness by the policy, and, when given, the
    explanation's verdict (reliance on sensitive features) with its own enforcement."""
    summary = f"accuracy {overall['accuracy']:.3f}, ROC AUC {overall['roc_auc']:.3f}; every fairness limit met"
    verdict = Verdict.judge(
        validation_findings(overall, overall_intervals, fairness, policy), summary=summary, enforce=policy.enforce
    )
    if explanation is None:
        return verdict
    return Verdict.combine([verdict, explanation], summary=f"{summary}; {explanation.reason}")
