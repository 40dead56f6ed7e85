"""The model a refresh judges: the version the registry's alias names (``production`` by default),
verified, with everything stored and signed with it that a refresh needs: the training data's
summary, the predictions at validation, the human-written files it was judged under and the
settings of the run that trained it (so its challenger is trained the same way)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kfp_rai.core.model_dir import MODEL_FILE, REFERENCE_FILE, load_model_bytes
from kfp_rai.errors import DataValidationError, IntegrityError, RAIError
from kfp_rai.production import HUMAN_FILES, PRODUCTION, ModelRegistry, read_state, verified_version
from kfp_rai.production._candidate import PREDICTION_FILE, SETTINGS_KEY
from kfp_rai.refresh._predictions import PredictionSummary
from kfp_rai.stats.summary import DataSummary


class NoChampion(RAIError):
    """The alias names no version (nothing is in production yet): there is nothing to refresh."""


@dataclass(frozen=True)
class Champion:
    """A verified registry version and what is stored with it."""

    name: str
    version: str
    asked: str  # the alias or version number it was resolved from
    state: str  # its state in the registry (candidate, approved)
    uri: str
    registry_uri: str
    meta: Mapping[str, Any]
    files: Mapping[str, bytes] = field(repr=False)

    @property
    def in_production(self) -> bool:
        return self.asked == PRODUCTION

    @property
    def role(self) -> str:
        """How reports name it: the champion in production, or a candidate checked before approval."""
        if self.in_production:
            return f"champion (production: {self.name} version {self.version})"
        return f"{self.state} {self.name} version {self.version} (checked before anyone approved it)"

    @property
    def reference(self) -> DataSummary:
        if REFERENCE_FILE not in self.files:
            raise DataValidationError(
                f"{self.name} version {self.version} has no stored reference summary: drift cannot be judged"
            )
        return DataSummary.from_dict(json.loads(self.files[REFERENCE_FILE]))

    @property
    def predictions(self) -> PredictionSummary | None:
        data = self.files.get(PREDICTION_FILE)
        return None if data is None else PredictionSummary.from_dict(json.loads(data))

    @property
    def settings(self) -> dict[str, Any]:
        """The training run's settings: data, target, positive label, sensitive features, test size,
        seed, pseudonymized columns, intended use (what is not recorded has the lifecycle's default)."""
        recorded = dict(self.meta.get(SETTINGS_KEY) or {})
        return {
            "training_data": recorded.get("training_data", ""),
            "target": self.meta.get("target", recorded.get("target", "")),
            "positive_label": str(self.meta.get("positive_label", recorded.get("positive_label", ""))),
            "sensitive_features": list(recorded.get("sensitive_features", [])),
            "test_size": float(recorded.get("test_size", 0.3)),
            "seed": int(self.meta.get("seed", 0)),
            "pseudonymize": list(recorded.get("pseudonymize", [])),
            "intended_use": str(recorded.get("intended_use", "")),
        }

    def human_text(self, key: str) -> str:
        """The text of a human-written file it was judged under (``policy``, ``collection_plan``,
        ``reference_population``), or "" when the defaults were used."""
        return self.files.get(HUMAN_FILES[key], b"").decode("utf-8")

    def estimator(self) -> Any:
        return load_model_bytes(self.files[MODEL_FILE], expected_sha256=str(self.meta["sha256"]))

    def to_dict(self) -> dict[str, Any]:
        """Where it came from (kept in a pipeline artifact's metadata beside the copied version)."""
        return {"name": self.name, "version": self.version, "asked": self.asked, "state": self.state,
                "uri": self.uri, "registry_uri": self.registry_uri, "sha256": self.meta.get("sha256")}  # fmt: skip

    @classmethod
    def from_dir(cls, path: Any, origin: Mapping[str, Any]) -> Champion:
        """A copied version (a pipeline artifact), verified again, with where it came from."""
        from kfp_rai.core.model_dir import read_model_files

        files, meta = read_model_files(path, origin.get("sha256"))
        if meta.get("name") != origin.get("name") or str(meta.get("version")) != str(origin.get("version")):
            raise IntegrityError(f"{path} holds another version than the champion resolved: refusing it")
        return cls(
            str(origin["name"]), str(origin["version"]), str(origin.get("asked", "")), str(origin.get("state", "")),
            str(origin.get("uri", "")), str(origin.get("registry_uri", "")), meta, files,
        )  # fmt: skip

    def outputs(self, given: Mapping[str, str]) -> dict[str, Any]:
        """What a refresh takes from the champion: the human-written files (the ones given win, else
        the ones it was judged under) and the settings of the run that trained it."""
        texts = {key: (given.get(key) or "").strip() and given[key] or self.human_text(key) for key in HUMAN_FILES}
        return {**texts, **self.settings}


def resolve_champion(registry: ModelRegistry, name: str, *, alias: str = PRODUCTION, version: str = "") -> Champion:
    """The version ``alias`` names (or ``version`` when given), verified: its event log, its
    signature, its model file, and that it sits where its metadata says.

    Raises
    ------
    NoChampion
        The alias names no version yet.
    IntegrityError
        The registry's history or the version does not verify; the version was rejected or archived.
    """
    state = read_state(registry, name)
    if not version and alias not in state.aliases:
        raise NoChampion(
            f"no version of {name} is {alias} yet: a person approves and promotes one (kfp-rai models approve / "
            "promote); a refresh compares only with what is in production"
        )
    record = state.resolve(version or alias)
    if record.state in ("rejected", "archived"):
        raise IntegrityError(f"version {record.version} of {name} is {record.state}: it is refreshed no more")
    entry, files = verified_version(registry, record, name)
    asked = version if version else alias
    return Champion(name, record.version, asked, record.state, entry.uri, registry.uri, entry.metadata, files)
