"""Verdicts as types: a gate's status and its findings, read by every renderer and consumer.

Nothing in kfp-rai decides anything by parsing a reason string: the HTML colour, the model card,
the run record, the CLI summary and the Kubeflow outputs all read :class:`GateStatus` and
:class:`Finding`.

>>> finding = Finding(rule="validation.min_accuracy", subject="accuracy", status=GateStatus.FAILED,
...                   message="accuracy 0.71 < 0.8", observed=0.71, limit=0.8)
>>> verdict = Verdict.judge([finding], summary="accuracy and fairness within policy")
>>> verdict.status, verdict.passed
(<GateStatus.FAILED: 'failed'>, False)
>>> verdict.reason
'1 of 1 checks failed: accuracy 0.71 < 0.8'
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kfp_rai.core.files import jsonable

Value = float | int | str | None


class GateStatus(str, enum.Enum):
    """The outcome of a gate, or of one check inside it."""

    PASSED = "passed"
    """Every rule held."""
    WARNING = "warning"
    """A rule was violated, and the policy records it without enforcing it (a written human decision)."""
    FAILED = "failed"
    """A rule was violated: the model stops here."""
    NOT_JUDGED = "not_judged"
    """Too little data, or a value that cannot be computed: nothing was decided, so the gate fails closed."""

    @property
    def ok(self) -> bool:
        """Whether a model may go on: passed, or a warning the policy chose to record only."""
        return self in (GateStatus.PASSED, GateStatus.WARNING)

    @property
    def label(self) -> str:
        """The status for people: ``PASSED``, ``WARNING``, ``FAILED``, ``NOT JUDGED``."""
        return self.value.replace("_", " ").upper()

    @property
    def severity(self) -> int:
        """Order for combining and sorting: passed < warning < not judged < failed."""
        return _SEVERITY[self]

    @classmethod
    def worst(cls, statuses: Iterable[GateStatus]) -> GateStatus:
        """The most severe status of ``statuses`` (passed when there are none)."""
        return max(statuses, key=lambda s: s.severity, default=cls.PASSED)


_SEVERITY = {GateStatus.PASSED: 0, GateStatus.WARNING: 1, GateStatus.NOT_JUDGED: 2, GateStatus.FAILED: 3}


def _worst(findings: Iterable[Finding]) -> GateStatus:
    return GateStatus.worst(f.status for f in findings)


def _reason(findings: tuple[Finding, ...], summary: str, enforced: bool) -> str:
    """``summary`` when everything passed; else the checks counted and every problem named."""
    status = _worst(findings)
    if status is GateStatus.PASSED:
        return summary
    problems = sorted((f for f in findings if f.status is not GateStatus.PASSED), key=lambda f: -f.status.severity)
    tally = [
        (s, n)
        for s in (GateStatus.FAILED, GateStatus.NOT_JUDGED, GateStatus.WARNING)
        if (n := sum(f.status is s for f in problems))
    ]
    if len(tally) == 1:
        head = f"{tally[0][1]} of {len(findings)} checks {tally[0][0].label.lower()}"
    else:
        head = " and ".join(f"{n} {s.label.lower()}" for s, n in tally) + f" of {len(findings)} checks"
    reason = f"{head}: " + "; ".join(f.message for f in problems)
    if not enforced and any(f.status is GateStatus.WARNING for f in problems):
        note = "violations recorded as warnings (the policy does not enforce this gate)"
        reason = f"{note}: {reason}" if status is GateStatus.WARNING else f"{reason} ({note})"
    return reason


@dataclass(frozen=True)
class Finding:
    """One check of one rule on one subject.

    Attributes
    ----------
    rule : str
        What was checked, named as in the policy where a policy key sets it
        (``validation.min_demographic_parity_ratio``).
    subject : str
        What it was checked on: an attribute, a group (``sex=Female``), a column, a metric.
    status : GateStatus
    message : str
        One line for people, never holding raw personal data.
    observed, limit : float, int, str or None
        The measured value and the policy's limit, where there are such values.
    interval : (float, float) or None
        The confidence interval of ``observed``, where one was computed.
    """

    rule: str
    subject: str
    status: GateStatus
    message: str
    observed: Value = None
    limit: Value = None
    interval: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "subject": self.subject,
            "status": self.status.value,
            "message": self.message,
            "observed": jsonable(self.observed),
            "limit": jsonable(self.limit),
            "interval": jsonable(self.interval),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        interval = data.get("interval")
        return cls(
            rule=str(data["rule"]),
            subject=str(data["subject"]),
            status=GateStatus(data["status"]),
            message=str(data["message"]),
            observed=data.get("observed"),
            limit=data.get("limit"),
            interval=None if interval is None else (float(interval[0]), float(interval[1])),
        )


@dataclass(frozen=True)
class Verdict:
    """A gate's status, a one-line reason naming every finding that is not passed, and all findings.

    Build it with :meth:`judge`, which applies the one combination rule every gate shares.
    """

    status: GateStatus
    reason: str
    findings: tuple[Finding, ...] = ()
    enforced: bool = True

    @property
    def passed(self) -> bool:
        """Passed or warning: the model may go on."""
        return self.status.ok

    @property
    def problems(self) -> tuple[Finding, ...]:
        """Findings that are not passed, most severe first (stable within a status)."""
        bad = [f for f in self.findings if f.status is not GateStatus.PASSED]
        return tuple(sorted(bad, key=lambda f: -f.status.severity))

    @classmethod
    def judge(cls, findings: Iterable[Finding], *, summary: str, enforce: bool = True) -> Verdict:
        """Combine findings into a verdict.

        - The status is the most severe finding's status; a gate that checked nothing is not
          judged (there is nothing to pass).
        - ``enforce=False`` records each *failed* finding as a warning: the policy's written decision
          not to block. A finding that is *not judged* stays not judged: a decision nobody could
          measure is never waived, so it still fails closed.
        - The reason is ``summary`` when everything passed; otherwise it counts the checks and
          lists every finding that did not pass, in full.
        """
        checked = tuple(findings)
        if not enforce:
            checked = tuple(
                replace(f, status=GateStatus.WARNING) if f.status is GateStatus.FAILED else f for f in checked
            )
        if not checked:
            return cls(GateStatus.NOT_JUDGED, f"nothing was checked, so nothing passed: {summary}", (), enforce)
        return cls(_worst(checked), _reason(checked, summary, enforce), checked, enforce)

    @classmethod
    def combine(cls, verdicts: Iterable[Verdict], *, summary: str) -> Verdict:
        """One verdict from several already judged ones (each keeps its own enforcement): the most
        severe status, every finding, and one reason counting and naming them all."""
        parts = tuple(verdicts)
        findings = tuple(f for v in parts for f in v.findings)
        enforced = all(v.enforced for v in parts)
        status = GateStatus.worst(v.status for v in parts)
        if status is GateStatus.NOT_JUDGED and not any(f.status is GateStatus.NOT_JUDGED for f in findings):
            # a part that checked nothing: say so rather than count zero problems
            return cls(status, "; ".join(v.reason for v in parts if v.status is status), findings, enforced)
        return cls(status, _reason(findings, summary, enforced), findings, enforced)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "passed": self.passed,
            "reason": self.reason,
            "enforced": self.enforced,
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Read a verdict back from a report's JSON (its top-level ``status``/``reason``/``findings``)."""
        return cls(
            status=GateStatus(data["status"]),
            reason=str(data["reason"]),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", [])),
            enforced=bool(data.get("enforced", True)),
        )


def blocked_by(gates: Sequence[str]) -> str:
    """ "blocked by the discovery and validation gates": the production gate's decision, named from
    the gates whose findings did not pass (read from their statuses, never from their text)."""
    return f"blocked by the {' and '.join(gates)} gate{'s' * (len(gates) > 1)}"
