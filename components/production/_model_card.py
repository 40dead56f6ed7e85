"""The model card: what the model is, what it was trained and judged on, and the verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kfp_rai._report import Report, Section, Table


@dataclass(frozen=True)
class ModelCard(Report):
    """A model card (after Mitchell et al., 2019) assembled from the stage reports' JSON."""

    kind = "model_card"
    title = "Model card"

    model_name: str
    approved_for_registration: bool
    reason: str
    details: dict[str, Any]
    intended_use: str
    training: dict[str, Any]
    representativeness: dict[str, Any]
    validation: dict[str, Any]
    explanation: dict[str, Any]
    lineage: dict[str, Any]

    def verdict(self) -> str:
        state = "ELIGIBLE FOR REGISTRATION" if self.approved_for_registration else "BLOCKED"
        return f"**{state}** — {self.reason}"

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
            ("attribute", "group", "rows", "accuracy", "selection rate", "TPR", "FPR"),
            tuple(
                (
                    f["attribute"],
                    g["group"],
                    g["count"],
                    g["accuracy"],
                    g["selection_rate"],
                    g["true_positive_rate"],
                    g["false_positive_rate"],
                )
                for f in v.get("fairness", [])
                if f["gated"]
                for g in f["groups"]
            ),
        )
        return [
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
                    f"Representativeness: {'passed' if r.get('passed') else 'NOT passed'} — {r.get('reason', '')}",
                ),
            ),
            Section(
                "Evaluation",
                (
                    f"{v.get('rows')} held-out rows. Accuracy {overall.get('accuracy', float('nan')):.3f}, "
                    f"ROC AUC {overall.get('roc_auc', float('nan')):.3f}.",
                    disparities,
                    groups,
                    f"Validation gate: {'passed' if v.get('passed') else 'NOT passed'} — {v.get('reason', '')}",
                ),
            ),
            Section(
                "Explanation",
                (
                    e.get("reason", "not available"),
                    Table(
                        ("feature", "share of attribution"),
                        tuple((i["feature"], i["share"]) for i in e.get("importance", [])[:10]),
                    ),
                ),
            ),
            Section(
                "Gate findings (all of them)",
                (
                    "\n".join(
                        f"- {stage}: {v}"
                        for stage, report in (("discovery", r), ("validation", v))
                        for v in report.get("violations", [])
                    )
                    or "None.",
                ),
            ),
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


def build_model_card(
    *,
    model_name: str,
    model_metadata: dict[str, Any],
    training: dict[str, Any],
    representativeness: dict[str, Any],
    validation: dict[str, Any],
    explanation: dict[str, Any],
    intended_use: str,
) -> ModelCard:
    """Assemble a card from the stage reports (their ``to_dict()`` JSON) and model metadata.

    The model is eligible for registration only when the representativeness and the validation
    gates both passed and the explanation is not flagged (reliance on sensitive features above the
    policy); the card says what blocked it otherwise, and lists every finding.
    """
    blocked = []
    if not representativeness.get("passed", False):
        blocked.append(f"discovery gate: {representativeness.get('reason', 'no result')}")
    if not validation.get("passed", False):
        blocked.append(f"validation gate: {validation.get('reason', 'no result')}")
    if explanation.get("flagged", False):
        blocked.append(f"explainability: {explanation.get('reason', 'flagged')}")
    warnings = [
        f"{name} gate passed with a warning: {report['reason']}"
        for name, report in (("discovery", representativeness), ("validation", validation))
        if report.get("passed") and str(report.get("reason", "")).startswith("warning")
    ]
    reason = "; ".join(blocked) if blocked else "; ".join(["every gate passed", *warnings])
    details = {
        "name": model_name,
        "framework": model_metadata.get("framework"),
        "estimator": model_metadata.get("estimator"),
        "features": list(model_metadata.get("features", [])),
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
        model_name=model_name,
        approved_for_registration=not blocked,
        reason=reason,
        details=details,
        intended_use=intended_use,
        training=training,
        representativeness=representativeness,
        validation=validation,
        explanation=explanation,
        lineage=lineage,
    )
