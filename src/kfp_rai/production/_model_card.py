"""The model card: what the model is, what it was trained and judged on, and the production gate.

The card's verdict is the production gate: a model is eligible for registration only when every
gate before it let it through (passed, or a warning the policy records). The gates are read from
the stage reports' verdicts, never from their text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kfp_rai.core.report import Report, Section, Table, findings_section
from kfp_rai.core.verdict import Finding, GateStatus, Verdict

_EXPLAINABILITY_RULES = "explainability."


@dataclass(frozen=True)
class ModelCard(Report):
    """A model card (after Mitchell et al., 2019) assembled from the stage reports' JSON."""

    kind = "model_card"
    title = "Model card"

    verdict: Verdict
    model_name: str
    details: dict[str, Any]
    intended_use: str
    training: dict[str, Any]
    representativeness: dict[str, Any]
    validation: dict[str, Any]
    explanation: dict[str, Any]
    lineage: dict[str, Any]

    @property
    def eligible(self) -> bool:
        return self.verdict.passed

    def verdict_label(self) -> str:
        return {GateStatus.PASSED: "ELIGIBLE", GateStatus.WARNING: "ELIGIBLE WITH WARNINGS"}.get(
            self.verdict.status, "BLOCKED"
        )

    def sections(self) -> list[Section]:
        v, r, e, t = self.validation, self.representativeness, self.explanation, self.training
        overall = v.get("overall", {})
        disparities = Table(
            ("attribute", "gated", "DP difference", "DP ratio", "EO difference"),
            tuple(
                (
                    f["attribute"],
                    f["gated"],
                    f["demographic_parity_difference"],
                    f["demographic_parity_ratio"],
                    f["equalized_odds_difference"],
                )
                for f in v.get("fairness", [])
            ),
        )
        groups = Table(
            ("attribute", "group", "rows", "accuracy", "selection rate", "TPR", "FPR", "precision"),
            tuple(
                (
                    f["attribute"],
                    g["group"],
                    g["count"],
                    g["accuracy"],
                    g["selection_rate"],
                    g["true_positive_rate"],
                    g["false_positive_rate"],
                    g.get("precision"),
                )
                for f in v.get("fairness", [])
                if f["gated"]
                for g in f["groups"]
            ),
        )
        gates = Table(
            ("gate", "status", "reason"),
            tuple((f.subject, f.status, f.message) for f in self.verdict.findings),
        )
        every = [
            findings_section(_verdict(report), f"{name.capitalize()} findings (all of them)")
            for name, report in (("discovery", r), ("validation", v))
        ]
        return [
            Section("Gates", (gates,)),
            Section(
                "Model details",
                (
                    Table(
                        ("field", "value"),
                        tuple((k, ", ".join(val) if isinstance(val, list) else val) for k, val in self.details.items()),
                    ),
                ),
            ),
            Section("Intended use", (self.intended_use,)),
            Section(
                "Training data",
                (
                    f"{t.get('rows')} rows; target `{t.get('target')}`, positive label `{t.get('positive_label')}` "
                    f"(base rate {t.get('positive_rate', float('nan')):.3f}). Seed {t.get('seed')}.",
                    f"Representativeness: {r.get('status', 'not_judged').replace('_', ' ')} — {r.get('reason', '')}",
                ),
            ),
            Section(
                "Evaluation",
                (
                    f"{v.get('rows')} held-out rows. Accuracy {overall.get('accuracy', float('nan')):.3f}, "
                    f"ROC AUC {overall.get('roc_auc', float('nan')):.3f}.",
                    disparities,
                    groups,
                    f"Validation: {v.get('status', 'not_judged').replace('_', ' ')} — {v.get('reason', '')}",
                ),
            ),
            Section(
                "Explanation",
                (
                    e.get("reason", "not available"),
                    Table(
                        ("feature", "share of attribution"),
                        tuple((i["feature"], i["share"]) for i in e.get("importance", [])),
                    ),
                ),
            ),
            *every,
            Section("Lineage", (Table(("input", "value"), tuple(self.lineage.items())),)),
            Section(
                "Caveats",
                (
                    "Fairness was measured only for the sensitive attributes listed; groups below the "
                    "policy's minimum size cannot be judged and fail closed. Metrics come from one held-out "
                    "split; the intervals are bootstrap percentiles over that split.",
                ),
            ),
        ]


def _verdict(report: Mapping[str, Any]) -> Verdict:
    """A stage report's verdict; a missing or unreadable one is not judged (fails closed)."""
    try:
        return Verdict.from_dict(report)
    except (KeyError, TypeError, ValueError):
        return Verdict(GateStatus.NOT_JUDGED, "no verdict was recorded")


def production_gate(
    representativeness: Mapping[str, Any],
    training: Mapping[str, Any],
    validation: Mapping[str, Any],
    explanation: Mapping[str, Any],
) -> Verdict:
    """The production gate: one finding per gate before it, and the decision to register or not.

    ``training`` is the training verdict the model's metadata records; a model without one is not
    judged. The validation verdict normally holds the explanation's findings (the validation stage
    judges reliance on sensitive features); if it was judged without them, the explanation gate is
    checked here on its own, so no wiring can skip it.
    """
    gates = [("discovery", representativeness), ("training", training), ("validation", validation)]
    if not any(f.rule.startswith(_EXPLAINABILITY_RULES) for f in _verdict(validation).findings):
        gates.append(("explainability", explanation))
    findings = []
    for name, report in gates:
        verdict = _verdict(report)
        findings.append(Finding(f"gate.{name}", name, verdict.status, f"{name}: {verdict.reason}"))
    blocked = [f for f in findings if not f.status.ok]
    warned = [f for f in findings if f.status is GateStatus.WARNING]
    if blocked:
        status = GateStatus.FAILED
        reason = (
            "blocked by the "
            + " and ".join(f.subject for f in blocked)
            + " gate"
            + ("s" if len(blocked) > 1 else "")
            + ": "
            + "; ".join(f.message for f in blocked)
        )
    elif warned:
        status = GateStatus.WARNING
        reason = "every gate passed, with recorded warnings: " + "; ".join(f.message for f in warned)
    else:
        status, reason = GateStatus.PASSED, "every gate passed"
    return Verdict(status=status, reason=reason, findings=tuple(findings))


def build_model_card(
    *,
    model_name: str,
    model_metadata: Mapping[str, Any],
    representativeness: Mapping[str, Any],
    validation: Mapping[str, Any],
    explanation: Mapping[str, Any],
    intended_use: str,
) -> ModelCard:
    """Assemble a card from the stage reports (their JSON) and the model's metadata.

    The card's verdict is :func:`production_gate`: eligible for registration only when every gate
    passed or recorded a warning; a blocked card names each gate that blocked it and why.
    """
    details = {
        "name": model_name,
        "framework": model_metadata.get("framework"),
        "estimator": model_metadata.get("estimator"),
        "features": list(model_metadata.get("features", [])),
        "decision threshold": model_metadata.get("decision_threshold"),
        "sha256": model_metadata.get("sha256"),
        "kfp_rai_version": model_metadata.get("kfp_rai_version"),
    }
    lineage = {
        "training_data_sha256": model_metadata.get("training_data_sha256"),
        "policy_sha256": model_metadata.get("policy_sha256"),
        "model_sha256": model_metadata.get("sha256"),
        "kfp_rai_version": model_metadata.get("kfp_rai_version"),
    }
    return ModelCard(
        verdict=production_gate(
            representativeness, model_metadata.get("training_verdict", {}), validation, explanation
        ),
        model_name=model_name,
        details=details,
        intended_use=intended_use,
        training=dict(model_metadata),
        representativeness=dict(representativeness),
        validation=dict(validation),
        explanation=dict(explanation),
        lineage=lineage,
    )
