"""The Policy: every threshold kfp-rai judges by, in one validated, hashable object.

A policy is written by people (YAML or JSON), reviewed like code, and its sha256 travels with every
artifact it judged. Each setting declares its type, bounds and meaning once, beside its default
(:func:`setting`); validation, error messages and the reference in ``docs/policy.md`` all come
from those declarations. Unknown keys and out-of-range values are refused, never ignored.

Example
-------
>>> from kfp_rai.policy import Policy
>>> policy = Policy.from_dict({"validation": {"min_demographic_parity_ratio": 0.9}})
>>> policy.validation.min_demographic_parity_ratio
0.9
>>> Policy.from_dict({"validation": {"min_accuracy": 1.5}})
Traceback (most recent call last):
...
kfp_rai.errors.InvalidParameterError: policy validation.min_accuracy must be a number in [0, 1], got 1.5
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

import yaml

from kfp_rai.core.files import load_yaml, read_text_file, text_or_uri
from kfp_rai.core.numbers import is_finite_number
from kfp_rai.errors import InvalidParameterError

_MSG = "policy {where} must be {rule}, got {value!r}"
_MSG_UNKNOWN = "unknown policy key {key!r} in section {section!r}; known keys: {known}"
Kind = Literal["number", "integer", "boolean", "columns", "decisions", "choice", "choices", "text"]
Closed = Literal["both", "left", "right", "neither"]


@dataclass(frozen=True)
class Constraint:
    """What a policy value must be: a kind and, for numbers, an interval.

    ``closed`` says which ends belong to the interval, as in scikit-learn's ``Interval``:
    ``"right"`` with ``low=0, high=1`` is ``(0, 1]``. A missing bound is unbounded.
    """

    kind: Kind
    low: float | None = None
    high: float | None = None
    closed: Closed = "both"
    choices: tuple[str, ...] = ()

    @property
    def low_closed(self) -> bool:
        return self.closed in ("both", "left")

    @property
    def high_closed(self) -> bool:
        return self.closed in ("both", "right")

    def describe(self) -> str:
        """The rule in words, as every error message states it (``a number in (0, 1]``)."""
        if self.kind == "boolean":
            return "true or false"
        if self.kind == "text":
            return "text"
        if self.kind == "columns":
            return "a list of column names"
        if self.kind == "decisions":
            return f"a mapping of column names to {', '.join(self.choices)}"
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        if self.kind == "choices":
            return f"a list of {', '.join(self.choices)}"
        noun = "a number" if self.kind == "number" else "an integer"
        if self.low is not None and self.high is not None:
            left, right = "[" if self.low_closed else "(", "]" if self.high_closed else ")"
            return f"{noun} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{noun} {'>=' if self.low_closed else '>'} {self.low:g}"
        if self.high is not None:
            return f"{noun} {'<=' if self.high_closed else '<'} {self.high:g}"
        return f"{noun}"

    def _in_bounds(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (value == self.low and not self.low_closed)):
            return False
        return not (self.high is not None and (value > self.high or (value == self.high and not self.high_closed)))

    def check(self, where: str, value: Any) -> Any:
        """Return ``value`` in its canonical type, or raise one :class:`InvalidParameterError`."""
        bad = InvalidParameterError(_MSG.format(where=where, rule=self.describe(), value=value))
        if self.kind == "boolean":
            if not isinstance(value, bool):
                raise bad
            return value
        if self.kind == "text":
            if not isinstance(value, str):
                raise bad
            return value.strip()
        if self.kind == "columns":
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise bad
            return tuple(value)
        if self.kind == "decisions":
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and v in self.choices for k, v in value.items()
            ):
                raise bad
            return tuple(sorted(value.items()))  # immutable inside the frozen policy
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise bad
            return value
        if self.kind == "choices":
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v in self.choices for v in value):
                raise bad
            return tuple(dict.fromkeys(value))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if self.kind == "integer":
            if not isinstance(value, int):
                raise bad
        elif not is_finite_number(value):
            raise bad
        if not self._in_bounds(value):
            raise bad
        return float(value) if self.kind == "number" else value


def Number(low: float | None = None, high: float | None = None, closed: Closed = "both") -> Constraint:  # noqa: N802
    return Constraint("number", low, high, closed)


def Integer(low: int) -> Constraint:  # noqa: N802
    return Constraint("integer", low, None, "left")


SHARE = Number(0, 1)  # a proportion or rate, both ends allowed
LEVEL = Number(0, 1, "neither")  # a confidence level or significance level
BOOLEAN = Constraint("boolean")
TEXT = Constraint("text")
COLUMNS = Constraint("columns")


def _enforce() -> Any:
    return setting(
        True, BOOLEAN, "false records a violation as a warning instead of failing (a written human decision)."
    )


def _exception_reason() -> Any:
    return setting(
        "",
        TEXT,
        "Why enforce (or a setting that judges intersections) is false: the written human decision, required "
        "then and quoted on the model card.",
    )


# Settings whose ``false`` makes a gate check less: each needs the section's written exception_reason.
RELAXING = ("enforce", "intersections", "gate_intersections", "require_approval", "separation_of_duties")


def setting(default: Any, constraint: Constraint, meaning: str) -> Any:
    """Declare a policy setting: its default, what values it admits, and what it means."""
    return field(default=default, metadata={"constraint": constraint, "meaning": meaning})


@dataclass(frozen=True)
class Setting:
    """A declared setting as read back from a section (name, default, constraint, meaning)."""

    name: str
    default: Any
    constraint: Constraint
    meaning: str


class PolicySection:
    """What every policy section shares: reading its declarations and serializing itself."""

    section: ClassVar[str]

    @classmethod
    def settings(cls) -> tuple[Setting, ...]:
        return tuple(
            Setting(f.name, f.default, f.metadata["constraint"], f.metadata["meaning"])
            for f in fields(cls)  # type: ignore[arg-type]
        )

    @classmethod
    def from_mapping(cls, given: Any) -> Any:
        if not isinstance(given, dict):
            raise InvalidParameterError(f"policy section {cls.section!r} must be a mapping of settings, got {given!r}")
        declared = {s.name: s for s in cls.settings()}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise InvalidParameterError(
                _MSG_UNKNOWN.format(key=unknown[0], section=cls.section, known=sorted(declared))
            )
        values = {k: declared[k].constraint.check(f"{cls.section}.{k}", v) for k, v in given.items()}
        relaxed = [k for k in RELAXING if k in declared and values.get(k) is False]
        if relaxed and not values.get("exception_reason"):
            keys = " and ".join(f"{cls.section}.{k}" for k in relaxed)
            raise InvalidParameterError(
                f"{keys} false but {cls.section}.exception_reason is empty: write why this gate checks less than it "
                "would (the reason is quoted on the model card and on the registry's events)"
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (column lists as lists, decisions as a mapping), as reports and the hash see it."""
        kinds = {s.name: s.constraint.kind for s in self.settings()}
        out: dict[str, Any] = {}
        for name, value in dataclasses.asdict(self).items():  # type: ignore[call-overload]
            out[name] = (
                dict(value) if kinds[name] == "decisions" else list(value) if isinstance(value, tuple) else value
            )
        return out


@dataclass(frozen=True)
class RepresentativenessPolicy(PolicySection):
    """Discovery gate: does the data hold every group about as often as the population does?"""

    section: ClassVar[str] = "representativeness"
    min_ratio: float = setting(
        0.8,
        Number(0, 1, "right"),
        "A group fails when its share of the data divided by its reference share is below this "
        "(0.8 mirrors the four-fifths rule).",
    )
    max_ratio: float = setting(
        1.25,
        Number(1, None, "left"),
        "A group fails as over-represented when that ratio is above this (1.25 mirrors 0.8).",
    )
    min_group_size: int = setting(
        30, Integer(1), "A group (or intersection) with fewer rows is too small to judge: not judged, fails closed."
    )
    intersections: bool = setting(
        True,
        BOOLEAN,
        "Also judge every intersection of two or more sensitive attributes (expected share: the product of the "
        "attributes' reference shares).",
    )
    judge_on: str = setting(
        "point",
        Constraint("choice", choices=("point", "interval")),
        "point: the limits apply to the share's ratio; interval: its whole simultaneous interval must lie within "
        "them. Either way a group is under- or over-represented only when its whole interval lies past a limit; "
        "one reaching across a limit is inconclusive (more data needed), which fails the gate as a violation "
        "would (not shown to be within tolerance), and one reaching across both limits is too small to judge.",
    )
    confidence_level: float = setting(
        0.95, LEVEL, "Simultaneous level of the intervals of one attribute's (or intersection's) shares (Goodman)."
    )
    enforce: bool = _enforce()
    exception_reason: str = _exception_reason()


@dataclass(frozen=True)
class ProxyPolicy(PolicySection):
    """Proxy features: which features stand in for a sensitive attribute, and what training does about it."""

    section: ClassVar[str] = "proxies"
    threshold: float = setting(
        0.3,
        Number(0, 1, "right"),
        "A feature is a proxy of a sensitive attribute when its association with it (Cramér's V for a "
        "categorical feature, the correlation ratio for a numeric one) reaches this.",
    )
    drop_from_training: bool = setting(
        False, BOOLEAN, "true removes every proxy from the model's inputs (it stays in the data for evaluation)."
    )


@dataclass(frozen=True)
class TrainingPolicy(PolicySection):
    """Training settings a reviewer should see."""

    section: ClassVar[str] = "training"
    use_sensitive_features: bool = setting(False, BOOLEAN, "Whether the sensitive attributes are model inputs.")
    exclude_features: tuple[str, ...] = setting(
        (), COLUMNS, "Further columns never used as inputs (identifiers, sampling weights)."
    )
    max_iter: int = setting(200, Integer(1), "HistGradientBoostingClassifier: boosting iterations.")
    learning_rate: float = setting(
        0.1, Number(0, None, "neither"), "HistGradientBoostingClassifier: shrinkage of each tree's contribution."
    )
    max_leaf_nodes: int = setting(31, Integer(2), "HistGradientBoostingClassifier: leaves per tree.")
    mitigation: str = setting(
        "none",
        Constraint("choice", choices=("none", "correlation_remover", "exponentiated_gradient", "threshold_optimizer")),
        "fairlearn mitigation: correlation_remover (pre), exponentiated_gradient (in) or threshold_optimizer (post), "
        "over the intersection of the sensitive attributes; validation shows the trade-off against the unmitigated "
        "model. correlation_remover and threshold_optimizer take the sensitive attributes as model inputs.",
    )
    mitigation_constraint: str = setting(
        "demographic_parity",
        Constraint("choice", choices=("demographic_parity", "equalized_odds")),
        "The fairness constraint exponentiated_gradient and threshold_optimizer enforce.",
    )
    mitigation_max_iter: int = setting(
        30, Integer(1), "exponentiated_gradient: iterations (each fits one gradient-boosted model)."
    )


@dataclass(frozen=True)
class ValidationPolicy(PolicySection):
    """Validation gate: performance floors and fairness ceilings (fairlearn's metric definitions)."""

    section: ClassVar[str] = "validation"
    min_accuracy: float = setting(0.8, SHARE, "Overall accuracy floor on held-out data.")
    min_roc_auc: float = setting(0.8, SHARE, "Overall ROC AUC floor on held-out data.")
    max_demographic_parity_difference: float = setting(
        0.1, SHARE, "Largest allowed gap in selection rate between groups of one sensitive attribute."
    )
    min_demographic_parity_ratio: float = setting(
        0.8, SHARE, "Smallest allowed ratio of the lowest to the highest selection rate (0.8: four-fifths rule)."
    )
    max_equalized_odds_difference: float = setting(
        0.1, SHARE, "Largest allowed gap in true- or false-positive rate between groups."
    )
    min_group_size: int = setting(
        30, Integer(1), "A group with fewer test rows cannot be judged: the gate fails closed."
    )
    min_positives: int = setting(
        10,
        Integer(1),
        "A group's true-positive rate (and precision, on predicted positives, and ROC AUC) from fewer positive "
        "cases is too small to judge: equalized odds is then taken without the group, which the gate records as "
        "not judged.",
    )
    min_negatives: int = setting(
        10, Integer(1), "The same for the false-positive rate (and ROC AUC) on a group's negative cases."
    )
    gate_intersections: bool = setting(
        True,
        BOOLEAN,
        "Judge the intersection of the sensitive attributes (e.g. sex × race) like each attribute: its groups' "
        "sizes and its disparities; false reports it without judging it.",
    )
    bootstrap_samples: int = setting(200, Integer(0), "Bootstrap resamples for confidence intervals (0: none).")
    confidence_level: float = setting(0.95, LEVEL, "Level of those intervals.")
    judge_on: str = setting(
        "point",
        Constraint("choice", choices=("point", "interval")),
        "point: a limit applies to the measured value; interval: to the least favourable end of its bootstrap "
        "interval (a disparity passes only if its interval's upper end meets the limit).",
    )
    threshold: float = setting(0.5, LEVEL, "Decision threshold on the predicted probability of the positive label.")
    reviewer_tolerance: float = setting(
        0.005,
        SHARE,
        "Largest difference allowed between a figure a reviewer computed (the reviewer file) and ours; beyond "
        "it the gate fails, whatever enforce says.",
    )
    enforce: bool = _enforce()
    exception_reason: str = _exception_reason()


@dataclass(frozen=True)
class ExplainabilityPolicy(PolicySection):
    """Explainability gate: how much may the model lean on the sensitive features?"""

    section: ClassVar[str] = "explainability"
    sample_size: int = setting(
        500,
        Integer(1),
        "Rows explained, before small groups are raised (min_group_rows): a bounded, seeded sample keeps SHAP fast.",
    )
    min_group_rows: int = setting(
        30,
        Integer(1),
        "The sample is stratified by the sensitive attributes' intersection: each stratum gets its proportional "
        "share of sample_size (at least one row), raised where a group of an attribute would get fewer than this "
        "many rows (so the sample holds at most sample_size + one row per stratum + the attributes' groups x this "
        "many rows), and importance is weighted "
        "back to the population. A group's own importance is shown only when at least this many of its rows were "
        "explained.",
    )
    max_sensitive_share: float = setting(
        0.05, SHARE, "Largest share of total attribution the sensitive features may carry."
    )
    max_proxy_share: float = setting(
        0.25,
        SHARE,
        "Largest share of total attribution the sensitive features and their proxies may carry together "
        "(what flows through a sensitive attribute or something standing in for it).",
    )
    enforce: bool = _enforce()
    exception_reason: str = _exception_reason()


@dataclass(frozen=True)
class DriftPolicy(PolicySection):
    """Refresh: when has the current data drifted away from the training reference?"""

    section: ClassVar[str] = "drift"
    psi_threshold: float = setting(
        0.2, Number(0, None, "neither"), "A numeric column drifts when its population stability index reaches this."
    )
    bins: int = setting(10, Integer(2), "Quantile bins of the reference used for PSI.")
    category_limit: int = setting(
        100,
        Integer(1),
        "Most frequent reference categories counted one by one per categorical column; the rest count as "
        "<other> (a 10k-level column stays bounded).",
    )
    chi2_alpha: float = setting(
        0.01, LEVEL, "A categorical column drifts only if its chi-square p-value is below this ..."
    )
    js_threshold: float = setting(
        0.1,
        Number(0, 1, "right"),
        "... and its Jensen-Shannon distance reaches this (with many rows a harmless shift is significant too).",
    )
    min_samples: int = setting(100, Integer(1), "Fewer current rows than this cannot show drift: not judged.")
    ks_threshold: float = setting(
        0.1,
        Number(0, 1, "right"),
        "A numeric column also drifts when its Kolmogorov-Smirnov distance D reaches this (an effect size: it does "
        "not grow with the rows), provided D exceeds its own noise (ks_alpha's critical value plus the sketches' "
        "rank error) ...",
    )
    wasserstein_threshold: float = setting(
        0.2,
        Number(0, None, "neither"),
        "... or its Wasserstein distance reaches this many reference standard deviations (same proviso).",
    )
    ks_alpha: float = setting(
        0.01, LEVEL, "Significance of the KS noise bound: below it, D and the Wasserstein distance never count."
    )


@dataclass(frozen=True)
class PrivacyPolicy(PolicySection):
    """Personal data: a person decides what happens to each column that looks like it (discovery
    detects e-mail, phone, national ids, payment cards, IPs, IBANs, dates of birth, names); a column
    nobody decided about is refused."""

    section: ClassVar[str] = "privacy"
    columns: tuple[tuple[str, str], ...] = setting(
        (),
        Constraint("decisions", choices=("pseudonymize", "drop", "keep")),
        "Per column: pseudonymize (HMAC with the key from the Secret), drop, or keep (a reviewer's statement "
        "that it is not personal data).",
    )

    @property
    def decisions(self) -> dict[str, str]:
        return dict(self.columns)


@dataclass(frozen=True)
class PromotionPolicy(PolicySection):
    """Production: what a registered version needs before it may take the production alias
    (`kfp-rai models approve / promote`; docs/governance.md)."""

    section: ClassVar[str] = "promotion"
    require_approval: bool = setting(
        True,
        BOOLEAN,
        "A version is promoted only after a person approved it; false waives the approval (exception_reason is "
        "then required and recorded on the promotion event).",
    )
    separation_of_duties: bool = setting(
        True,
        BOOLEAN,
        "An approval by the person who launched the run that trained the version is refused (as is one for a run "
        "that recorded no launcher); false allows it, with exception_reason recorded on the approval.",
    )
    exception_reason: str = _exception_reason()


@dataclass(frozen=True)
class RefreshPolicy(PolicySection):
    """Refresh: when a production model's successor is trained, on what, and what it must not lose
    against the champion (the same held-out rows for both; docs/refresh.md)."""

    section: ClassVar[str] = "refresh"
    retrain_on: tuple[str, ...] = setting(
        ("drift", "performance", "fairness"),
        Constraint("choices", choices=("drift", "performance", "fairness")),
        "What triggers a challenger: drift (of the inputs or of the champion's predictions), performance (an "
        "enforced floor the champion misses on the new labelled rows), fairness (an enforced fairness limit it "
        "misses there; a limit the policy only records was missed at validation too).",
    )
    min_rows: int = setting(
        1000, Integer(1), "Fewer labelled current rows than this train no challenger (the verdict says so)."
    )
    cooldown_hours: float = setting(
        24.0,
        Number(0, None, "left"),
        "No new challenger while one registered less than this many hours ago awaits a decision (from the "
        "registry's events).",
    )
    training_data: str = setting(
        "reference+current",
        Constraint("choice", choices=("current", "reference+current")),
        "What the challenger trains on: the labelled current rows, or the champion's training data and them.",
    )
    positive_rate_confidence: float = setting(
        0.999,
        LEVEL,
        "Prediction drift: the share of positive predictions drifted when its Wilson interval at this level "
        "excludes the share at validation (the score distribution's PSI uses drift.psi_threshold).",
    )
    max_accuracy_drop: float = setting(
        0.01, SHARE, "Non-regression: the challenger's accuracy may be at most this much below the champion's."
    )
    max_roc_auc_drop: float = setting(
        0.01, SHARE, "Non-regression: the challenger's ROC AUC may be at most this much below the champion's."
    )
    max_demographic_parity_ratio_drop: float = setting(
        0.02, SHARE, "Non-regression, per attribute: the demographic-parity ratio may fall by at most this."
    )
    max_demographic_parity_difference_rise: float = setting(
        0.02, SHARE, "Non-regression, per attribute: the demographic-parity difference may rise by at most this."
    )
    max_equalized_odds_difference_rise: float = setting(
        0.02, SHARE, "Non-regression, per attribute: the equalized-odds difference may rise by at most this."
    )
    judge_on: str = setting(
        "point",
        Constraint("choice", choices=("point", "interval")),
        "point: a non-regression limit applies to the paired difference itself; interval: to the least favourable "
        "end of its paired bootstrap interval.",
    )
    notify_url: str = setting(
        "",
        TEXT,
        "A webhook (http or https URL) that receives a short JSON when a challenger awaits a person's decision "
        "(empty: none).",
    )
    enforce: bool = _enforce()
    exception_reason: str = _exception_reason()


@dataclass(frozen=True)
class CardPolicy(PolicySection):
    """The model card's accountability (after Model Card Toolkit's owners, licences and citations):
    who answers for the model and how it may be used and cited. Written by people; an empty one is
    said on the card as not stated, never filled in."""

    section: ClassVar[str] = "card"
    owner: str = setting("", TEXT, "Who answers for the model (a team or a person), on the card.")
    contact: str = setting("", TEXT, "How to reach the owner (an address or a channel), on the card.")
    licence: str = setting("", TEXT, "The licence the model itself is used under (the data's is the plan's).")
    citation: str = setting(
        "", TEXT, "How to cite the model; empty: the card cites itself (name, version, date, sha256)."
    )


SECTIONS: tuple[type[PolicySection], ...] = (
    PrivacyPolicy,
    RepresentativenessPolicy,
    ProxyPolicy,
    TrainingPolicy,
    ValidationPolicy,
    ExplainabilityPolicy,
    DriftPolicy,
    RefreshPolicy,
    PromotionPolicy,
    CardPolicy,
)


@dataclass(frozen=True)
class Policy:
    """All thresholds, grouped by stage. Build with :meth:`from_dict`, :meth:`from_yaml` or
    :meth:`load`; every value is checked on construction."""

    privacy: PrivacyPolicy = field(default_factory=PrivacyPolicy)
    representativeness: RepresentativenessPolicy = field(default_factory=RepresentativenessPolicy)
    proxies: ProxyPolicy = field(default_factory=ProxyPolicy)
    training: TrainingPolicy = field(default_factory=TrainingPolicy)
    validation: ValidationPolicy = field(default_factory=ValidationPolicy)
    explainability: ExplainabilityPolicy = field(default_factory=ExplainabilityPolicy)
    drift: DriftPolicy = field(default_factory=DriftPolicy)
    refresh: RefreshPolicy = field(default_factory=RefreshPolicy)
    promotion: PromotionPolicy = field(default_factory=PromotionPolicy)
    card: CardPolicy = field(default_factory=CardPolicy)

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        """Build a policy from a mapping of sections; missing keys keep their defaults."""
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise InvalidParameterError(f"a policy must be a mapping of sections, got {type(data).__name__}")
        names = [s.section for s in SECTIONS]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise InvalidParameterError(_MSG_UNKNOWN.format(key=unknown[0], section="<top>", known=names))
        # An empty section (``validation:`` with nothing under it) is YAML's None: defaults. Anything
        # else that is not a mapping ([], 0, "") is refused by from_mapping, never read as empty.
        return cls(
            **{s.section: s.from_mapping({} if data.get(s.section) is None else data[s.section]) for s in SECTIONS}
        )

    @classmethod
    def from_yaml(cls, text: str) -> Policy:
        """Parse YAML (or JSON, a subset of YAML) text, or read it from a store URI
        (``s3://bucket/policy.yaml``). Empty text gives the default policy."""
        text = text_or_uri(text, "policy")
        return cls.from_dict(load_yaml(text, "policy") if text and text.strip() else {})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Policy:
        """Read a policy file (YAML or JSON)."""
        return read_text_file(path, "policy", cls.from_yaml)

    def to_dict(self) -> dict[str, Any]:
        return {s.section: getattr(self, s.section).to_dict() for s in SECTIONS}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    @property
    def sha256(self) -> str:
        """Hash of the canonical JSON form: equal policies hash equally, whatever their file looked like."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def reference_markdown() -> str:
    """``docs/policy.md``: every setting with its default, allowed values and meaning."""
    out = [
        "# Policy reference",
        "",
        "Generated from the declarations in `src/kfp_rai/policy.py` (`make docs`); a test keeps it in step.",
        "Every key is optional; a missing key keeps its default. Unknown keys and values outside the",
        "allowed range are refused with one line naming the key.",
        "",
    ]
    for section in SECTIONS:
        out += [f"## `{section.section}`", "", (section.__doc__ or "").strip(), ""]
        out += ["| key | default | allowed | meaning |", "|---|---|---|---|"]
        for s in section.settings():
            shown = dict(s.default) if s.constraint.kind == "decisions" else s.default
            default = json.dumps(list(shown) if isinstance(shown, tuple) else shown)
            out.append(f"| `{s.name}` | `{default}` | {s.constraint.describe()} | {s.meaning} |")
        out.append("")
    return "\n".join(out)
