"""The reference population: shares per sensitive attribute from a cited source, and the written
mapping from the data's labels to the source's categories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from kfp_rai.core.files import HumanWrittenYaml
from kfp_rai.core.numbers import is_finite_number
from kfp_rai.errors import InvalidParameterError

_SHARE_TOLERANCE = 0.01


def _share(attr: str, cat: Any, value: Any) -> float:
    if not is_finite_number(value) or value < 0:
        raise InvalidParameterError(f"share of {attr}={cat!r} must be a finite number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ReferencePopulation(HumanWrittenYaml):
    """Population shares per sensitive attribute, from a cited source, with a written mapping
    from the data's labels to the source's categories.

    Attributes
    ----------
    source, year, url : str, int, str
        Where the shares come from.
    shares : dict
        attribute -> data label -> population share (mapped and normalized to sum to 1).
    """

    what: ClassVar[str] = "reference population"

    source: str
    year: int
    url: str
    shares: dict[str, dict[str, float]]

    @classmethod
    def from_dict(cls, data: Any) -> ReferencePopulation:
        if not isinstance(data, dict):
            raise InvalidParameterError(
                "a reference population must be a mapping with 'source', 'year' and 'attributes'"
            )
        if unknown := sorted(str(k) for k in set(data) - {"source", "year", "url", "attributes"}):
            raise InvalidParameterError(
                f"reference population: unknown key {unknown[0]!r} (it holds source, year, url and attributes)"
            )
        for key in ("source", "year", "attributes"):
            if key not in data:
                raise InvalidParameterError(
                    f"the reference population lacks {key!r}: say which source and year it uses"
                )
        year = data["year"]
        if isinstance(year, bool) or not isinstance(year, int):
            raise InvalidParameterError(f"the reference population's 'year' must be a whole year, got {year!r}")
        if not isinstance(data["attributes"], dict) or not data["attributes"]:
            raise InvalidParameterError("reference population 'attributes' must map attribute names to shares")
        shares: dict[str, dict[str, float]] = {}
        for attr, spec in data["attributes"].items():
            if not isinstance(spec, dict) or not isinstance(spec.get("shares"), dict) or not spec["shares"]:
                raise InvalidParameterError(f"reference attribute {attr!r} needs a 'shares' mapping")
            if unknown := sorted(str(k) for k in set(spec) - {"shares", "mapping"}):
                raise InvalidParameterError(
                    f"reference attribute {attr!r}: unknown key {unknown[0]!r} (it holds shares and mapping)"
                )
            source_shares = {str(cat): _share(attr, cat, v) for cat, v in spec["shares"].items()}
            total = sum(source_shares.values())
            if abs(total - 1.0) > _SHARE_TOLERANCE:
                raise InvalidParameterError(f"shares of {attr!r} add up to {total:.3f}, not 1")
            mapping = spec.get("mapping") or {c: [c] for c in source_shares}
            if not isinstance(mapping, dict):
                raise InvalidParameterError(f"the mapping of {attr!r} must map data labels to source categories")
            used: list[str] = []
            mapped: dict[str, float] = {}
            for label, cats in mapping.items():
                cats = [cats] if isinstance(cats, str) else cats
                if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
                    raise InvalidParameterError(
                        f"mapping of {attr}={label!r} must name source categories (text), got {cats!r}"
                    )
                for cat in cats:
                    if cat not in source_shares:
                        raise InvalidParameterError(
                            f"mapping of {attr}={label!r} names {cat!r}, which is not among the source's categories"
                        )
                used += cats
                mapped[str(label)] = sum(source_shares[c] for c in cats) / total
            if len(used) != len(set(used)):
                raise InvalidParameterError(f"a source category of {attr!r} is mapped to two data labels")
            shares[str(attr)] = mapped
        return cls(source=str(data["source"]), year=year, url=str(data.get("url", "")), shares=shares)

    @classmethod
    def default(cls) -> ReferencePopulation:
        """The bundled US Census 2000 shares for Adult's ``sex`` and ``race``."""
        from kfp_rai.core.bundled import data_path

        return cls.load(str(data_path("reference_population_us_census2000.yaml")))
