"""The model card: what the model is, what it was trained and judged on, and the production gate.

The card's verdict is the production gate: a model is eligible for registration only when every
gate before it let it through (passed, or a warning the policy records). The gates are read from
the stage reports' verdicts, never from their text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kfp_rai.core.report import Bullets, Figure, Report, Section, Table, findings_section
from kfp_rai.core.verdict import Finding, GateStatus, Verdict, blocked_by
from kfp_rai.errors import IntegrityError
from kfp_rai.production._card_challenger import challenger_sections

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
    datasheet: dict[str, Any] | None = None
    refresh: dict[str, Any] | None = None  # a challenger's: the refresh that made it
    comparison: dict[str, Any] | None = None  # a challenger's: against the champion on the same rows
    # the policy's card section: owner, contact, licence, citation (people write them; empty: not stated)
    accountability: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def eligible(self) -> bool:
        return self.verdict.passed

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """The card back from its JSON (:meth:`to_dict`): the registry renders it again for the
        version number it gives, and `kfp-rai models show --html` beside the version's history."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"verdict"}
        try:
            return cls(verdict=Verdict.from_dict(data), **{k: data[k] for k in fields if k in data})
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"the model card's JSON cannot be read back: {exc}") from exc

    def verdict_label(self) -> str:
        return {GateStatus.PASSED: "ELIGIBLE", GateStatus.WARNING: "ELIGIBLE WITH WARNINGS"}.get(
            self.verdict.status, "BLOCKED"
        )

    def headline(self) -> str:
        """One line: the decision and which gates made it; each gate's own line is in the Gates
        table right below, and every finding further down (the reason in full stays in the JSON)."""
        findings = self.verdict.findings
        if not self.verdict.status.ok:
            decided = blocked_by([f.subject for f in findings if not f.status.ok])
        elif self.verdict.status is GateStatus.WARNING:
            warned = sum(f.status is GateStatus.WARNING for f in findings)
            decided = f"eligible, with violations recorded as warnings by {warned} gate{'s' * (warned != 1)}"
        else:
            return self.verdict.reason
        return f"{decided}: what each gate found is in the table below, every finding further down"

    def next_steps(self) -> tuple[str, ...]:
        """What a person does next, by the card's verdict."""
        if not self.verdict.status.ok:
            return (
                "Do not deploy: the registry refuses this model and no server loads it.",
                "Fix what the gates found (the data, the model or its mitigation) and run the lifecycle again; "
                "or, where a relaxed limit is justified, change the policy with a written exception_reason "
                "(it appears on this card).",
            )
        warned = "; read every recorded warning below first" if self.verdict.status is GateStatus.WARNING else ""
        return (
            f"A person other than the one who trained it reviews this card{warned}, then approves or rejects the "
            f"version: `kfp-rai models approve {self.model_name} VERSION --by WHO --note TEXT` (or `reject`).",
            f"Once approved, `kfp-rai models promote {self.model_name} VERSION --by WHO` makes it production; "
            "only then is it deployed.",
        )

    def exceptions(self) -> list[tuple[str, str]]:
        """(gate, the written reason) for every gate whose policy records violations instead of
        blocking, read from the policy each stage report was judged under."""
        out = []
        for name, report in (
            ("representativeness", self.representativeness),
            ("validation", self.validation),
            ("explainability", self.explanation),
        ):
            policy = report.get("policy", {})
            relaxed = [
                {"enforce": "not enforced", "intersections": "intersections not judged"}.get(
                    key, "intersections not gated"
                )
                for key in ("enforce", "intersections", "gate_intersections")
                if policy.get(key) is False
            ]
            if relaxed:
                out.append(
                    (f"{name} ({', '.join(relaxed)})", policy.get("exception_reason") or "no reason was written")
                )
        return out

    def changed_settings(self) -> list[str]:
        """Every policy setting the stage reports were judged under that differs from kfp-rai's
        default: a loosened number needs no written reason, but it is never hidden."""
        from kfp_rai.policy import ExplainabilityPolicy, ProxyPolicy, RepresentativenessPolicy, ValidationPolicy

        out = []
        for section, report in (
            (RepresentativenessPolicy, self.representativeness),
            (ValidationPolicy, self.validation),
            (ExplainabilityPolicy, self.explanation),
        ):
            used, default = report.get("policy", {}), section().to_dict()
            for key, value in used.items():
                if key != "exception_reason" and key in default and value != default[key]:
                    out.append(f"{section.section}.{key}: {value} (default {default[key]})")
        threshold = (self.datasheet or {}).get("proxy_threshold")
        if threshold is not None and threshold != ProxyPolicy().threshold:
            out.append(f"proxies.threshold: {threshold} (default {ProxyPolicy().threshold})")
        return out

    def _accountability(self) -> list[tuple[str, Any]]:
        """Owner, contact, licence as the policy's card section states them, and how to cite the card."""
        said = self.accountability
        missing = "not stated (the policy's card.{key})"
        rows: list[tuple[str, Any]] = [
            (key, said.get(key) or missing.format(key=key)) for key in ("owner", "contact", "licence")
        ]
        cite = said.get("citation") or (
            f"{self.model_name}, model card by kfp-rai {self.details.get('kfp_rai_version')}, model sha256 "
            f"{self.details.get('sha256')} (version and date: the subject table above)"
        )
        return [*rows, ("citation", cite)]

    def _model_details(self) -> Section:
        rows = [(k, ", ".join(map(str, val)) if isinstance(val, list) else val) for k, val in self.details.items()]
        rows += self._accountability()
        rows += [(f"hyperparameter {k}", v) for k, v in self.training.get("hyperparameters", {}).items()]
        return Section("Model details", (Table(("field", "value"), tuple(rows)),))

    def _factors(self) -> Section:
        v, sheet = self.validation, self.datasheet or {}
        attributes = [f["attribute"] for f in v.get("fairness", [])]
        proxies = _proxies(sheet)
        dropped = self.training.get("dropped_proxies", [])
        return Section(
            "Factors",
            (
                "Groups the model was evaluated on (each attribute and intersection): "
                + (", ".join(attributes) or "none")
                + ".",
                "Proxies (features standing in for a sensitive attribute, from the datasheet): "
                + (", ".join(f"{f} (of {', '.join(a)})" for f, a in proxies.items()) or "none found or not measured")
                + "."
                + (f" Left out of training by the policy: {', '.join(dropped)}." if dropped else ""),
                "Not evaluated: any attribute not listed above (e.g. age bands, disability), and how the "
                "model behaves on populations unlike the training data's.",
            ),
        )

    def _metrics(self) -> Section:
        p = self.validation.get("policy", {})
        e = self.explanation.get("policy", {})
        rows = [
            ("accuracy", "share of correct predictions", f">= {p.get('min_accuracy')}"),
            ("ROC AUC", "probability a positive row scores above a negative one", f">= {p.get('min_roc_auc')}"),
            ("selection rate", "share of rows predicted positive", "—"),
            ("TPR", "share of positive rows predicted positive (recall)", "—"),
            ("FPR", "share of negative rows predicted positive", "—"),
            ("precision", "share of positive predictions that are right", "—"),
            (
                "demographic parity difference",
                "largest minus smallest selection rate across groups",
                f"<= {p.get('max_demographic_parity_difference')}",
            ),
            (
                "demographic parity ratio",
                "smallest / largest selection rate across groups",
                f">= {p.get('min_demographic_parity_ratio')}",
            ),
            (
                "equalized odds difference",
                "the larger of the TPR gap and the FPR gap across groups",
                f"<= {p.get('max_equalized_odds_difference')}",
            ),
            (
                "sensitive share",
                "share of SHAP attribution on sensitive features",
                f"<= {e.get('max_sensitive_share')}",
            ),
            (
                "proxy share",
                "share of SHAP attribution on sensitive features and their proxies",
                f"<= {e.get('max_proxy_share')}",
            ),
        ]
        level = p.get("confidence_level")
        judged = "the least favourable end of its interval" if p.get("judge_on") == "interval" else "the value itself"
        return Section(
            "Metrics",
            (
                f"Decision threshold {p.get('threshold')} on the predicted probability. Intervals: {level:.0%} "
                f"bootstrap percentiles over {p.get('bootstrap_samples')} resamples of the test rows"
                f" (groups below {p.get('min_group_size')} rows are too small to judge; a rate from fewer than "
                f"{p.get('min_positives', 10)} positive or {p.get('min_negatives', 10)} negative cases is not judged; "
                "where resampling cannot vary a rate, none or all of its cases, its interval is Wilson's). Each limit "
                "applies to "
                f"{judged}."
                if isinstance(level, float)
                else "No validation policy was recorded.",
                Table(("metric", "definition", "policy limit"), tuple(rows)),
            ),
        )

    def _data(self) -> list[Section]:
        t, r, v, sheet = self.training, self.representativeness, self.validation, self.datasheet or {}
        plan = sheet.get("plan") or {}
        source = (
            f"{plan.get('title')} — licence {plan.get('licence')}, collected {plan.get('collection', {}).get('start')} "
            f"to {plan.get('collection', {}).get('end')}. {plan.get('purpose', '')}"
            if plan
            else "No data collection plan was given: the data's provenance is not stated."
        )
        notes = tuple(sheet.get("notes", ()))
        return [
            Section(
                "Training data",
                (
                    source,
                    f"{t.get('rows')} training rows; target `{t.get('target')}`, positive label "
                    f"`{t.get('positive_label')}` (base rate {t.get('positive_rate', float('nan')):.3f}). Seed "
                    f"{t.get('seed')}.",
                    f"Representativeness: {r.get('status', 'not_judged').replace('_', ' ')} — {r.get('reason', '')}",
                    Bullets(notes or ("The datasheet notes nothing about base rates or missing values by group.",)),
                ),
            ),
            Section(
                "Evaluation data",
                (
                    f"{v.get('rows')} held-out rows of the same data set (a stratified split): the evaluation "
                    "says how the model does on data like its training data, not on a different population.",
                ),
            ),
        ]

    def _quantitative(self) -> Section:
        v = self.validation
        overall, ci = v.get("overall", {}), v.get("overall_intervals", {})
        metrics = ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate", "precision")

        disparities = Table(
            ("attribute", "gated", "DP difference", "DP ratio", "EO difference"),
            tuple(
                (
                    f["attribute"],
                    f["gated"],
                    *(
                        _value_and_interval(f[name], f.get("intervals", {}).get(name))
                        for name in (
                            "demographic_parity_difference",
                            "demographic_parity_ratio",
                            "equalized_odds_difference",
                        )
                    ),
                )
                for f in v.get("fairness", [])
            ),
        )
        groups = Table(
            ("attribute", "group", "rows", "accuracy", "selection rate", "TPR", "FPR", "precision", "ROC AUC"),
            tuple(
                (
                    f["attribute"],
                    g["group"],
                    g["count"],
                    *(
                        "too small to judge"
                        if g.get("too_small")
                        else _unjudged(
                            _value_and_interval(g.get(m), g.get("intervals", {}).get(m)), g.get("unjudged", {}).get(m)
                        )
                        for m in metrics
                    ),
                    "too small to judge"
                    if g.get("too_small")
                    else _unjudged(g.get("roc_auc"), g.get("unjudged", {}).get("roc_auc")),
                )
                for f in v.get("fairness", [])
                for g in f["groups"]
            ),
        )
        return Section(
            "Quantitative analyses",
            (
                *self._charts(),
                f"Overall: accuracy {overall.get('accuracy', float('nan')):.3f}"
                + (f" ({ci['accuracy'][0]:.3f}-{ci['accuracy'][1]:.3f})" if ci.get("accuracy") else "")
                + f", ROC AUC {overall.get('roc_auc', float('nan')):.3f}"
                + (f" ({ci['roc_auc'][0]:.3f}-{ci['roc_auc'][1]:.3f})" if ci.get("roc_auc") else "")
                + ".",
                "Disparities between groups (value, interval):",
                disparities,
                "Per group and intersection (value, interval):",
                groups,
                f"Validation: {v.get('status', 'not_judged').replace('_', ' ')} — {v.get('reason', '')}",
            ),
        )

    def _charts(self) -> tuple[Figure, ...]:
        """Selection rate and TPR per group of each gated attribute, with intervals and the overall value."""
        from kfp_rai.core.charts import IntervalRow, Limit, interval_chart

        figures = []
        overall = self.validation.get("overall", {})
        for f in self.validation.get("fairness", []):
            if not f.get("gated"):
                continue
            for metric, label in (("selection_rate", "selection rate"), ("true_positive_rate", "true positive rate")):
                rows = [
                    IntervalRow(
                        g["group"],
                        g[metric],
                        low=(g.get("intervals", {}).get(metric) or (None, None))[0],
                        high=(g.get("intervals", {}).get(metric) or (None, None))[1],
                        status=None,
                    )
                    for g in f["groups"]
                ]
                caption = (
                    f"{f['attribute']}: {label} per group (dot; line: bootstrap interval, Wilson's where resampling "
                    f"cannot vary the rate, none for a group too small to judge); dashed: the whole test set."
                )
                limits = (Limit(overall[metric], "overall"),) if metric in overall else ()
                chart = interval_chart(
                    rows, title=f"{f['attribute']}: {label}", xlabel=label, alt=caption, limits=limits, xlim=(0, 1)
                )
                figures.append(Figure(chart, caption))
        return tuple(figures)

    def _reviewer(self) -> Section:
        from kfp_rai.validation import reviewer_summary

        record = self.validation.get("reviewer")
        rows = tuple(
            (GateStatus(c["status"]), c["metric"], c["theirs"], c["ours"], c["difference"])
            for c in (record or {}).get("comparisons", [])
        )
        table = (Table(("status", "metric", "reviewer", "ours", "difference"), rows),) if rows else ()
        return Section("Human-computed check", (reviewer_summary(record), *table))

    def _ethics(self) -> Section:
        r, sheet, e = self.representativeness, self.datasheet or {}, self.explanation
        under = [
            f"{g['attribute']}={g['group']} ({g['representation']})"
            for g in r.get("groups", [])
            if g.get("representation") not in (None, "within tolerance")
        ]
        personal = [c["column"] for c in sheet.get("personal_data", [])]
        items = [
            "Groups not represented as in the reference population: " + (", ".join(under) or "none") + ".",
            f"Reliance on sensitive features and their proxies: {e.get('proxy_share', float('nan')):.1%} of "
            "attribution"
            + (
                f" ({interval[0]:.1%}–{interval[1]:.1%}: the spread of explaining a sample of rows, not every row)"
                if (interval := e.get("proxy_share_interval"))
                else ""
            )
            + " (a model can treat groups differently without seeing the attribute).",
            "Personal data found when loading: "
            + (", ".join(personal) + " (each handled as the policy decided)" if personal else "none detected")
            + ".",
            "The model's errors fall on people: read the per-group error rates above before any use, and keep "
            "a person in the loop for decisions that matter to someone.",
        ]
        return Section("Ethical considerations", (Bullets(tuple(items)),))

    def _caveats(self) -> Section:
        return Section(
            "Caveats and recommendations",
            (
                Bullets(
                    (
                        "Fairness was measured only for the sensitive attributes listed; groups below the policy's "
                        "minimum size are too small to judge and fail closed.",
                        "Metrics come from one held-out split; the intervals are bootstrap percentiles over it (Wilson "
                        "score intervals for a rate with no or only successes).",
                        "Representativeness of intersections assumes the reference's attributes are independent "
                        "(the product of their shares) unless the reference gives joint shares.",
                        "Re-run the lifecycle when the data drifts (refresh) and before any change of intended use.",
                        "Do not use the model outside its intended use"
                        + (
                            "." if self.verdict.status.ok else "; this card is BLOCKED: the model must not be deployed."
                        ),
                    )
                ),
            ),
        )

    def sections(self) -> list[Section]:
        v, r, e = self.validation, self.representativeness, self.explanation
        gates = Table(
            ("gate", "status", "what it found (the first problem; every finding below)"),
            tuple((f.subject, f.status, _first_problem(f.message)) for f in self.verdict.findings),
        )
        every = [
            findings_section(_verdict(report), f"{name.capitalize()} findings (all of them)")
            for name, report in (("discovery", self.datasheet or r), ("validation", v))
        ]
        exceptions = self.exceptions()
        changed = self.changed_settings()
        return [
            Section("Gates", (gates,)),
            Section("Next steps", (Bullets(self.next_steps()),)),
            *challenger_sections(self.refresh, self.comparison),
            Section(
                "Policy exceptions",
                (
                    Bullets(tuple(f"{gate}. Written reason: “{why}”" for gate, why in exceptions))
                    if exceptions
                    else "No gate was relaxed: each was enforced and judged intersections.",
                    "Settings that differ from kfp-rai's defaults:",
                    Bullets(tuple(changed) or ("none: the built-in defaults applied.",)),
                ),
            ),
            self._model_details(),
            Section("Intended use", (self.intended_use,)),
            Section(
                "Out-of-scope uses",
                (
                    "Any use not stated above; decisions about people outside the data's population or period"
                    + ("; any use while this card is BLOCKED." if not self.verdict.status.ok else "."),
                ),
            ),
            self._factors(),
            dataclasses.replace(self._metrics(), collapsed=True),  # definitions and limits: reference material
            *self._data(),
            self._quantitative(),
            self._reviewer(),
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
            self._ethics(),
            self._caveats(),
            *every,
            Section("Lineage", (Table(("input", "value"), tuple(self.lineage.items())),), collapsed=True),
        ]


def _first_problem(message: str, most: int = 240) -> str:
    """A gate's finding cut to its count and first problem ("8 failed of 20 checks: sex=Female: ...")."""
    first, _, rest = message.partition("; ")
    if len(first) > most:
        first = first[: most - 1].rstrip() + "…"
    return first + (" (and more: below)" if rest or len(first) < len(message.partition("; ")[0]) else "")


def _proxies(sheet: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in sheet.get("associations", []):
        if a.get("proxy"):
            out.setdefault(a["feature"], []).append(a["attribute"])
    return out


def _unjudged(cell: Any, why: str | None) -> Any:
    """A metric computed on too few of its cases keeps its value, and says it is not judged and why."""
    if not why or cell is None:
        return cell
    shown = f"{cell:.3f}" if isinstance(cell, float) else str(cell)
    return f"{shown}, not judged: {why}"


def _value_and_interval(value: Any, interval: Any) -> Any:
    """``0.312 (0.298-0.327)`` as one cell, or the bare value without an interval."""
    if value is None or not interval:
        return value
    low, high = interval
    return f"{value:.3f} ({low:.3f}-{high:.3f})"


def _verdict(report: Mapping[str, Any]) -> Verdict:
    """A stage report's verdict; a missing or unreadable one is not judged (fails closed)."""
    try:
        return Verdict.from_dict(report)
    except (KeyError, TypeError, ValueError):
        return Verdict(GateStatus.NOT_JUDGED, "no verdict was recorded")


def production_gate(
    discovery: Mapping[str, Any],
    training: Mapping[str, Any],
    validation: Mapping[str, Any],
    explanation: Mapping[str, Any],
    comparison: Mapping[str, Any] | None = None,
) -> Verdict:
    """The production gate: one finding per gate before it, and the decision to register or not.

    ``training`` is the training verdict the model's metadata records; a model without one is not
    judged. The validation verdict normally holds the explanation's findings (the validation stage
    judges reliance on sensitive features); if it was judged without them, the explanation gate is
    checked here on its own, so no wiring can skip it. A challenger's ``comparison`` with the
    champion is its non-regression gate.
    """
    gates = [("discovery", discovery), ("training", training), ("validation", validation)]
    if not any(f.rule.startswith(_EXPLAINABILITY_RULES) for f in _verdict(validation).findings):
        gates.append(("explainability", explanation))
    if comparison is not None:
        gates.append(("non-regression", comparison))
    findings = []
    for name, report in gates:
        verdict = _verdict(report)
        findings.append(Finding(f"gate.{name}", name, verdict.status, f"{name}: {verdict.reason}"))
    blocked = [f for f in findings if not f.status.ok]
    warned = [f for f in findings if f.status is GateStatus.WARNING]
    if blocked:
        status = GateStatus.FAILED
        reason = blocked_by([f.subject for f in blocked]) + ": " + "; ".join(f.message for f in blocked)
    elif warned:
        status = GateStatus.WARNING
        reason = (
            f"eligible, with violations recorded as warnings by {len(warned)} gate{'s' * (len(warned) != 1)} under "
            "the policy's written exceptions: " + "; ".join(f.message for f in warned)
        )  # the card's headline() names the same count from the same statuses
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
    datasheet: Mapping[str, Any] | None = None,
    refresh: Mapping[str, Any] | None = None,
    comparison: Mapping[str, Any] | None = None,
    accountability: Mapping[str, Any] | None = None,
) -> ModelCard:
    """Assemble a card from the stage reports (their JSON) and the model's metadata.

    With the ``datasheet`` (discovery's decision: representativeness and the collection plan), the
    discovery gate is the datasheet's verdict and the card describes the data from it.

    The card's verdict is :func:`production_gate`: eligible for registration only when every gate
    passed or recorded a warning; a blocked card names each gate that blocked it and why. A
    challenger's card also says why it exists (``refresh``) and how it compares with the champion
    (``comparison``, its non-regression gate).
    """
    details = {
        "name": model_name,
        "framework": model_metadata.get("framework"),
        "estimator": model_metadata.get("estimator"),
        "features": list(model_metadata.get("features", [])),
        "decision threshold": model_metadata.get("decision_threshold"),
        "fairness mitigation": (
            f"{model_metadata['mitigation']} ({model_metadata.get('mitigation_constraint') or 'no constraint'})"
            if model_metadata.get("mitigation", "none") != "none"
            else "none"
        ),
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
            datasheet if datasheet is not None else representativeness,
            model_metadata.get("training_verdict", {}),
            validation,
            explanation,
            comparison,
        ),
        model_name=model_name,
        details=details,
        intended_use=intended_use,
        training=dict(model_metadata),
        representativeness=dict(representativeness),
        validation=dict(validation),
        explanation=dict(explanation),
        lineage=lineage,
        datasheet=dict(datasheet) if datasheet is not None else None,
        refresh=dict(refresh) if refresh is not None else None,
        comparison=dict(comparison) if comparison is not None else None,
        accountability=dict(accountability or {}),
    )
