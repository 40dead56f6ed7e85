"""The Policy: every threshold kfp-rai judges by, in one validated, hashable object.

A policy is written by people (YAML or JSON), reviewed like code, and its sha256 travels with every
artifact it judged. Unknown keys and out-of-range values are refused, never ignored.

Example
-------
>>> from kfp_rai.policy import Policy
>>> policy = Policy.from_dict({"validation": {"min_demographic_parity_ratio": 0.9}})
>>> policy.validation.min_demographic_parity_ratio
0.9
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from kfp_rai.errors import InvalidParameterError
from kfp_rai.io import parse_text_file

_MSG_UNKNOWN = "unknown policy key {key!r} in section {section!r}; known keys: {known}"
_MSG_TYPE = "policy {where} must be {kind}, got {value!r}"
_MSG_RANGE = "policy {where} must be {rule}, got {value!r}"


@dataclass(frozen=True)
class RepresentativenessPolicy:
    """Discovery gate: is every group present at least ``min_ratio`` of its population share?

    Attributes
    ----------
    min_ratio : float
        A group fails when its share in the data divided by its reference share is below this
        (0.8 mirrors the four-fifths rule).
    min_group_size : int
        A group with fewer rows fails: too few to learn from or to measure.
    confidence_level : float
        Level of the Wilson interval reported for each share.
    enforce : bool
        ``False`` turns a failure into a recorded warning (a human decision, kept in the policy hash).
    """

    min_ratio: float = 0.8
    min_group_size: int = 30
    confidence_level: float = 0.95
    enforce: bool = True


@dataclass(frozen=True)
class TrainingPolicy:
    """Training settings a reviewer should see.

    Attributes
    ----------
    use_sensitive_features : bool
        Whether the sensitive attributes are model inputs (default: no).
    exclude_features : list of str
        Further columns never used as inputs (identifiers, sampling weights).
    max_iter, learning_rate, max_leaf_nodes :
        HistGradientBoostingClassifier settings.
    """

    use_sensitive_features: bool = False
    exclude_features: tuple[str, ...] = ()
    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31


@dataclass(frozen=True)
class ValidationPolicy:
    """Validation gate: performance floors and fairness ceilings (fairlearn's definitions).

    Attributes
    ----------
    min_accuracy, min_roc_auc : float
        Overall performance floors.
    max_demographic_parity_difference : float
        Largest allowed gap in selection rate between groups of one sensitive attribute.
    min_demographic_parity_ratio : float
        Smallest allowed ratio of the lowest to the highest selection rate (0.8 = four-fifths rule).
    max_equalized_odds_difference : float
        Largest allowed gap in true- or false-positive rate between groups.
    min_group_size : int
        Groups (of each single attribute) with fewer test rows fail the gate: unmeasurable.
    bootstrap_samples : int
        Bootstrap resamples for confidence intervals (0 turns them off).
    confidence_level : float
        Level of those intervals.
    threshold : float
        Decision threshold on the predicted probability of the positive label.
    enforce : bool
        ``False`` records violations as warnings instead of failing the gate.
    """

    min_accuracy: float = 0.8
    min_roc_auc: float = 0.8
    max_demographic_parity_difference: float = 0.1
    min_demographic_parity_ratio: float = 0.8
    max_equalized_odds_difference: float = 0.1
    min_group_size: int = 30
    bootstrap_samples: int = 200
    confidence_level: float = 0.95
    threshold: float = 0.5
    enforce: bool = True


@dataclass(frozen=True)
class ExplainabilityPolicy:
    """Attribution settings.

    Attributes
    ----------
    sample_size : int
        Rows explained (a bounded, seeded sample keeps SHAP fast).
    max_sensitive_share : float
        Share of total attribution that sensitive features may carry before it is flagged.
    """

    sample_size: int = 500
    max_sensitive_share: float = 0.05


@dataclass(frozen=True)
class DriftPolicy:
    """Refresh: when has the current data drifted away from the training reference?

    Attributes
    ----------
    psi_threshold : float
        Numeric column drifts when its population stability index reaches this (0.2 is customary).
    bins : int
        Quantile bins of the reference used for PSI.
    chi2_alpha : float
        Categorical column: significance level of the chi-square test ...
    js_threshold : float
        ... and the Jensen-Shannon distance it must also reach (large samples make tiny,
        harmless shifts significant, so significance alone is not drift).
    min_samples : int
        Fewer current rows than this cannot show drift: reported, not judged.
    """

    psi_threshold: float = 0.2
    bins: int = 10
    chi2_alpha: float = 0.01
    js_threshold: float = 0.1
    min_samples: int = 100


_SECTIONS = {
    "representativeness": RepresentativenessPolicy,
    "training": TrainingPolicy,
    "validation": ValidationPolicy,
    "explainability": ExplainabilityPolicy,
    "drift": DriftPolicy,
}

# (lower, upper, inclusive-lower) bounds of every numeric field, by name.
_PROBABILITIES = {
    "min_ratio",
    "confidence_level",
    "min_accuracy",
    "min_roc_auc",
    "max_demographic_parity_difference",
    "min_demographic_parity_ratio",
    "max_equalized_odds_difference",
    "threshold",
    "max_sensitive_share",
    "chi2_alpha",
    "js_threshold",
    "learning_rate",
}
_POSITIVE_INTS = {"min_group_size", "max_iter", "max_leaf_nodes", "sample_size", "bins", "min_samples"}


def _check_value(section: str, name: str, default: Any, value: Any) -> Any:
    where = f"{section}.{name}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InvalidParameterError(_MSG_TYPE.format(where=where, kind="true or false", value=value))
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise InvalidParameterError(_MSG_TYPE.format(where=where, kind="a list of column names", value=value))
        return tuple(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameterError(_MSG_TYPE.format(where=where, kind="an integer", value=value))
        low = 1 if name in _POSITIVE_INTS else 0
        if name == "bins" and value < 2:
            raise InvalidParameterError(_MSG_RANGE.format(where=where, rule=">= 2", value=value))
        if value < low:
            raise InvalidParameterError(_MSG_RANGE.format(where=where, rule=f">= {low}", value=value))
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidParameterError(_MSG_TYPE.format(where=where, kind="a number", value=value))
        value = float(value)
        if not math.isfinite(value):
            raise InvalidParameterError(_MSG_RANGE.format(where=where, rule="a finite number", value=value))
        if name in _PROBABILITIES and not 0.0 < value <= 1.0 and not (name.startswith("max_") and value == 0.0):
            raise InvalidParameterError(_MSG_RANGE.format(where=where, rule="in (0, 1]", value=value))
        if name == "psi_threshold" and value <= 0:
            raise InvalidParameterError(_MSG_RANGE.format(where=where, rule="> 0", value=value))
        return value
    raise AssertionError(f"unhandled policy field type for {where}")  # pragma: no cover


@dataclass(frozen=True)
class Policy:
    """All thresholds, grouped by stage. Build with :meth:`from_dict`, :meth:`from_yaml`,
    or :meth:`load`; every value is checked on construction.
    """

    representativeness: RepresentativenessPolicy = field(default_factory=RepresentativenessPolicy)
    training: TrainingPolicy = field(default_factory=TrainingPolicy)
    validation: ValidationPolicy = field(default_factory=ValidationPolicy)
    explainability: ExplainabilityPolicy = field(default_factory=ExplainabilityPolicy)
    drift: DriftPolicy = field(default_factory=DriftPolicy)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Policy:
        """Build a policy from a mapping of sections; missing keys keep their defaults."""
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise InvalidParameterError(f"a policy must be a mapping of sections, got {type(data).__name__}")
        unknown = set(data) - set(_SECTIONS)
        if unknown:
            raise InvalidParameterError(
                _MSG_UNKNOWN.format(key=sorted(unknown)[0], section="<top>", known=sorted(_SECTIONS))
            )
        sections = {}
        for name, klass in _SECTIONS.items():
            given = data.get(name) or {}
            if not isinstance(given, dict):
                raise InvalidParameterError(f"policy section {name!r} must be a mapping, got {given!r}")
            defaults = {f.name: f.default for f in fields(klass)}
            bad = set(given) - set(defaults)
            if bad:
                raise InvalidParameterError(
                    _MSG_UNKNOWN.format(key=sorted(bad)[0], section=name, known=sorted(defaults))
                )
            values = {k: _check_value(name, k, defaults[k], v) for k, v in given.items()}
            sections[name] = klass(**values)
        return cls(**sections)

    @classmethod
    def from_yaml(cls, text: str) -> Policy:
        """Parse YAML (or JSON, a subset of YAML) text. Empty text gives the default policy."""
        try:
            data = yaml.safe_load(text) if text and text.strip() else {}
        except yaml.YAMLError as exc:
            raise InvalidParameterError(f"the policy is not valid YAML: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Policy:
        """Read a policy file (YAML or JSON)."""
        return parse_text_file(path, "policy", cls.from_yaml)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for section in out.values():
            for key, value in section.items():
                if isinstance(value, tuple):
                    section[key] = list(value)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    @property
    def sha256(self) -> str:
        """Hash of the canonical JSON form: equal policies hash equally, whatever their file looked like."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
