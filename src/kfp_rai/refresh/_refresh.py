"""The refresh stage's verdict and decision: what triggered (input drift, prediction drift, the
champion's performance or fairness on new labelled rows), and whether a challenger is trained —
policy decides, with the reason written down either way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kfp_rai.core.charts import distribution_chart
from kfp_rai.core.report import Bullets, Figure, Report, Section, Table, findings_section
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.policy import Policy
from kfp_rai.refresh._champion import Champion
from kfp_rai.refresh._drift import DriftReport
from kfp_rai.refresh._monitor import Measured, champion_performance, input_drift
from kfp_rai.refresh._predictions import PredictionSummary, bin_labels, prediction_drift
from kfp_rai.validation import ValidationReport

PERFORMANCE_RULES = ("validation.min_accuracy", "validation.min_roc_auc")
_TRIGGERED = (GateStatus.WARNING, GateStatus.FAILED)


@dataclass(frozen=True)
class Decision:
    """Whether a challenger is trained, what triggered, and why (not)."""

    retrain: bool
    triggers: tuple[str, ...]
    reason: str
    training_data: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"retrain": self.retrain, "triggers": list(self.triggers), "reason": self.reason,
                "training_data": self.training_data}  # fmt: skip


def _hours_since(when: str, now: dt.datetime) -> float:
    try:
        then = dt.datetime.fromisoformat(when)
    except ValueError:
        return 0.0  # an unreadable time counts as just now: no new challenger (fails closed)
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.timezone.utc)
    return (now - then).total_seconds() / 3600


def decide(
    triggers: tuple[str, ...],
    measured: Measured,
    policy: Policy,
    *,
    now: dt.datetime,
    pending: tuple[str, str] | None = None,
    reference_data: str = "",
) -> Decision:
    """Retrain only when a trigger the policy names fired, the current data holds enough labelled
    rows with the model's inputs, and no challenger younger than the cooldown awaits a decision.
    ``pending`` is that challenger's (version, registration time), from the registry's events;
    ``reference_data`` where the champion's training data is (recorded at registration)."""
    rules = policy.refresh
    wanted = tuple(t for t in triggers if t in rules.retrain_on)
    window = rules.training_data
    note = ""
    if window == "reference+current" and not reference_data:
        window, note = "current", " (the champion recorded no training data location: current rows only)"
    if not triggers:
        return Decision(False, (), "nothing triggered: no retrain")
    if not wanted:
        return Decision(False, triggers, f"{', '.join(triggers)} triggered, but refresh.retrain_on names none of them")
    if not measured.labelled_rows:
        return Decision(
            False, triggers, f"{', '.join(wanted)} triggered, but the current data holds no labels: retraining needs "
            "them (send a labelled batch, or late labels for the served predictions)",
        )  # fmt: skip
    if not measured.has_features:
        return Decision(
            False, triggers, f"{', '.join(wanted)} triggered, but {measured.name} holds no model inputs (serving's "
            "summaries and late labels keep none): a challenger trains on a labelled batch of rows",
        )  # fmt: skip
    if measured.labelled_rows < rules.min_rows:
        return Decision(
            False, triggers, f"{', '.join(wanted)} triggered, but only {measured.labelled_rows} labelled rows "
            f"(< refresh.min_rows {rules.min_rows}): too few to train a challenger on",
        )  # fmt: skip
    if pending is not None:
        age = _hours_since(pending[1], now)
        if age < rules.cooldown_hours:
            return Decision(
                False, triggers, f"{', '.join(wanted)} triggered, but challenger version {pending[0]} (registered "
                f"{age:.1f} h ago, < refresh.cooldown_hours {rules.cooldown_hours:g}) still awaits a decision",
            )  # fmt: skip
    reason = f"{', '.join(wanted)} triggered: a challenger is trained on {window} data{note}"
    return Decision(True, triggers, reason, window)


def triggered(
    drift: DriftReport | None, predictions: list[Finding], performance: ValidationReport | None
) -> tuple[str, ...]:
    found = []
    if (drift is not None and drift.drift_detected) or any(f.status in _TRIGGERED for f in predictions):
        found.append("drift")
    if performance is not None:
        # A limit the policy enforces and the champion now misses: one it only records (a warning, the
        # policy's written decision) was missed at validation too, and retraining is no answer to it.
        problems = [f for f in performance.verdict.findings if f.status is GateStatus.FAILED]
        if any(f.rule in PERFORMANCE_RULES for f in problems):
            found.append("performance")
        if any(f.rule not in PERFORMANCE_RULES for f in problems):
            found.append("fairness")
    return tuple(found)


@dataclass(frozen=True)
class RefreshReport(Report):
    """What the champion sees now against what it was judged on, and the decision."""

    kind = "refresh_report"
    title = "Refresh: the model in production against what it sees now"

    verdict: Verdict
    champion: dict[str, Any]
    window: dict[str, Any]
    decision: Decision
    drift: DriftReport | None
    predictions: dict[str, Any]
    performance: ValidationReport | None
    policy: dict[str, Any]

    @property
    def drift_detected(self) -> bool:
        return "drift" in self.decision.triggers

    def verdict_label(self) -> str:
        return "RETRAIN" if self.decision.retrain else self.verdict.status.label

    def sections(self) -> list[Section]:
        c, w = self.champion, self.window
        out = [
            Section(
                "Decision",
                (
                    f"**{'A challenger is trained' if self.decision.retrain else 'No challenger'}**: "
                    f"{self.decision.reason}.",
                    Bullets(
                        (
                            f"Compared with: the {c['role']}, sha256 `{c['sha256']}`.",
                            f"Current data: {w['name']} ({w['source']}), {w['rows']} rows, {w['labelled_rows']} "
                            f"labelled; window at {w['time']}.",
                            "Triggers: " + (", ".join(self.decision.triggers) or "none") + ".",
                        )
                    ),
                ),
            )
        ]
        if self.predictions.get("reference"):
            ref = PredictionSummary.from_dict(self.predictions["reference"])
            cur = PredictionSummary.from_dict(self.predictions["current"])
            shares = [
                (label, a / max(ref.rows, 1), b / max(cur.rows, 1))
                for label, a, b in zip(bin_labels(), ref.counts, cur.counts, strict=True)
            ]
            status = GateStatus.worst(
                f.status for f in self.verdict.findings if f.rule in ("refresh.score_psi", "refresh.positive_rate")
            )
            figure = distribution_chart(
                [s[0] for s in shares],
                {"at validation": [s[1] for s in shares], "now": [s[2] for s in shares]},
                title="The model's scores",
                alt="share of predictions per score bin, at validation and now",
                status=status,
                xlabel="score bin",
            )
            out.append(
                Section(
                    "Prediction drift",
                    (
                        Figure(
                            figure,
                            "Score distribution at validation and now, coloured by the prediction drift finding.",
                        ),
                        Table(
                            ("", "predictions", "positive share"),
                            (
                                ("at validation", ref.rows, ref.positive_rate),
                                ("now", cur.rows, cur.positive_rate),
                            ),
                        ),
                    ),
                )
            )
        if self.drift is not None:
            out += [Section(f"Input drift: {s.title}", s.blocks) for s in self.drift.sections()]
        if self.performance is not None:
            out.append(
                Section(
                    "The model on the new labelled rows",
                    (
                        f"Performance and fairness of the {c['role']} on {w['labelled_rows']} labelled current rows, "
                        "by the validation policy's limits (the same metrics and intervals as at validation).",
                    ),
                )
            )
            out += [s for s in self.performance.sections() if s.title != "Findings"]
        return [*out, findings_section(self.verdict)]


def judge_refresh(
    champion: Champion,
    measured: Measured,
    policy: Policy,
    *,
    seed: int = 0,
    now: dt.datetime | None = None,
    pending: tuple[str, str] | None = None,
    window_time: str = "",
) -> RefreshReport:
    """Judge what :func:`~kfp_rai.refresh._monitor.measure_data` (or the traffic and labels readers)
    measured, and decide. The verdict: passed when nothing triggered, a warning when drift or a
    limit the champion misses triggered, failed when the champion fails an enforced limit on the
    new rows, not judged when something could not be measured (too few rows: never "no drift")."""
    now = now or dt.datetime.now(dt.timezone.utc)
    drift = input_drift(measured, champion, policy)
    predictions = prediction_drift(
        champion.predictions,
        measured.predictions,
        psi_threshold=policy.drift.psi_threshold,
        confidence=policy.refresh.positive_rate_confidence,
        min_rows=policy.drift.min_samples,
    )
    performance = champion_performance(measured, policy, seed)
    fired = triggered(drift, predictions, performance)
    decision = decide(
        fired, measured, policy, now=now, pending=pending, reference_data=champion.settings["training_data"]
    )
    parts = [Verdict.judge(predictions, summary="predictions as at validation")]
    if drift is not None:
        parts.insert(0, drift.verdict)
    if performance is not None:
        parts.append(performance.verdict)
    decision_finding = Finding(
        "refresh.decision",
        "challenger",
        GateStatus.WARNING if decision.retrain else GateStatus.PASSED,
        decision.reason,
    )
    verdict = Verdict.combine(
        [*parts, Verdict.judge([decision_finding], summary=decision.reason)],
        summary=f"nothing triggered: the {champion.role} still sees what it was judged on",
    )
    reference = champion.predictions
    return RefreshReport(
        verdict=verdict,
        champion={"name": champion.name, "version": champion.version, "role": champion.role,
                  "sha256": champion.meta.get("sha256"), "uri": champion.uri, "in_production": champion.in_production},
        window={"name": measured.name, "source": measured.source, "rows": measured.rows,
                "labelled_rows": measured.labelled_rows, "time": window_time or now.isoformat(timespec="seconds")},
        decision=decision,
        drift=drift,
        predictions={"reference": reference.to_dict() if reference else None,
                     "current": measured.predictions.to_dict()},
        performance=performance,
        policy=policy.refresh.to_dict(),
    )  # fmt: skip


def scheduled_time(scheduled: str, created: str) -> str:
    """The refresh's point in time: KFP's schedule time for a recurring run, else the run's creation
    time (a manual run's schedule placeholder holds nothing usable), else now."""
    for value in (scheduled, created):
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (ValueError, AttributeError):
            continue
        if when.year > 1971:
            return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def pending_challenger(events: Any) -> tuple[str, str] | None:
    """The challenger awaiting a decision and when it was registered, from a model's state."""
    state = events
    version = state.aliases.get("challenger")
    if version is None:
        return None
    record = state.versions[version]
    return (version, record.registered) if record.state in ("candidate", "approved") else None


def report_metrics(report: RefreshReport) -> Mapping[str, float]:
    """Numbers for the Kubeflow UI's metrics view."""
    out: dict[str, float] = {
        "rows": float(report.window["rows"]),
        "labelled_rows": float(report.window["labelled_rows"]),
        "retrain": float(report.decision.retrain),
    }
    if report.drift is not None:
        out["drifted_columns"] = float(len(report.drift.drifted_columns))
    cur = PredictionSummary.from_dict(report.predictions["current"])
    out["positive_rate"] = cur.positive_rate
    if report.performance is not None:
        out.update({f"champion.{k}": float(v) for k, v in report.performance.overall.items()})
    return out


def monitor_champion(
    champion: Champion,
    current: Any,
    policy: Policy,
    *,
    sensitive: Sequence[str] = (),
    registry_uri: str = "",
    seed: int = 0,
    window_time: str = "",
    labels: str = "",
    audit_log: str = "",
) -> RefreshReport:
    """The refresh stage: measure the current data (rows, or serving's traffic summaries with late
    labels) against the champion in one pass (:func:`~kfp_rai.refresh._monitor.measure_current`),
    read the cooldown from the registry's events, judge and decide (:func:`judge_refresh`). The
    audit and pseudonymization keys come from the environment, as serving takes them."""
    from kfp_rai.core.params import check_seed
    from kfp_rai.discovery import hmac_key_from_env
    from kfp_rai.production import ModelRegistry, read_state
    from kfp_rai.refresh._monitor import is_traffic, measure_current
    from kfp_rai.serving._audit import audit_key_from_env

    check_seed(seed)

    traffic = is_traffic(current)
    measured = measure_current(
        current, champion, sensitive, labels=labels, audit_log=audit_log,
        audit_key=audit_key_from_env() if traffic else None, hmac_key=hmac_key_from_env() if labels else None,
    )  # fmt: skip
    pending = pending_challenger(read_state(ModelRegistry(registry_uri), champion.name)) if registry_uri else None
    now = dt.datetime.fromisoformat(window_time) if window_time else None
    return judge_refresh(champion, measured, policy, seed=seed, now=now, pending=pending, window_time=window_time)
