"""Personal data found before anything is written: by column name and by what the values look like.

Detection reports column names and counts, never a value. What happens to a column is a human
decision written into the policy (``privacy.columns``): ``pseudonymize`` (HMAC, keyed), ``drop``,
or ``keep`` (a reviewer's statement that the column is not personal data after all). Personal data
nobody decided about is refused: nothing is trained on it, written with it or logged.

Value patterns (on text values; national ids and cards also on whole numbers):

- ``email``: local@domain.tld
- ``phone``: international or national numbers with separators (+44 20 7946 0958, (555) 123-4567);
  a column counts only when most of its values look like one (digits alone are too common)
- ``national_id``: US social security numbers (123-45-6789, not 000/666/9xx areas), UK National
  Insurance numbers (AB123456C)
- ``payment_card``: 13 to 19 digits passing the Luhn check
- ``ip_address``: IPv4 and IPv6 addresses
- ``iban``: country code, check digits and account, passing the ISO 13616 mod-97 check
- ``date_of_birth``: dates, in a column whose name says birth or dob
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from kfp_rai.errors import DataValidationError, InvalidParameterError

SAMPLE = 5_000  # values checked per column (a seeded sample beyond that)
_MOSTLY = 0.5  # share of values a weak pattern (phone) must match to flag a column

_NAME_HINTS = {
    "email": {"email", "mail", "e-mail"},
    "phone": {"phone", "mobile", "telephone", "tel", "fax"},
    "national_id": {"ssn", "nino", "passport", "national", "taxid", "tin", "sin"},
    "payment_card": {"card", "creditcard", "pan", "ccnumber"},
    "ip_address": {"ip", "ipaddress", "ipv4", "ipv6"},
    "iban": {"iban", "bic", "swift"},
    "date_of_birth": {"dob", "birth", "birthday", "birthdate"},
    "name": {"name", "firstname", "lastname", "surname", "fullname", "forename"},
    "address": {"address", "street", "postcode", "zipcode", "zip"},
    "identifier": {"customerid", "userid", "patientid", "clientid", "accountid", "employeeid", "memberid"},
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?\(?\d{1,4}\)?(?:[\s.\-]?\(?\d{2,5}\)?){2,4}$")
_SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}$")
_NINO = re.compile(r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$|^\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}$")


def luhn(digits: str) -> bool:
    """The Luhn checksum of a digit string (payment cards)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(value: str) -> bool:
    digits = re.sub(r"[\s\-]", "", value)
    return digits.isdigit() and 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn(digits)


def _iban(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    if not _IBAN.match(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _ip(value: str) -> bool:
    if not any(ch in value for ch in ".:") or len(value) < 3:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _phone(value: str) -> bool:
    if _DATE.match(value) or _SSN.match(value):  # what a stronger pattern describes is not a phone number
        return False
    digits = sum(ch.isdigit() for ch in value)
    return 7 <= digits <= 15 and bool(_PHONE.match(value)) and any(ch in value for ch in " +-.()")


_PATTERNS: dict[str, Callable[[str], bool]] = {
    "email": lambda v: bool(_EMAIL.match(v)),
    "national_id": lambda v: bool(_SSN.match(v) or _NINO.match(v.replace(" ", "").upper())),
    "payment_card": _card,
    "ip_address": _ip,
    "iban": _iban,
    "phone": _phone,
}
_WEAK = {"phone"}


def _tokens(column: str) -> set[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", column)
    parts = [p.lower() for p in re.split(r"[^A-Za-z0-9]+", spaced) if p]
    return {*parts, "".join(parts)}


@dataclass(frozen=True)
class PersonalColumn:
    """A column that looks like personal data: by its name, by its values, or both."""

    column: str
    kinds: tuple[str, ...]
    by_name: bool
    matches: int  # values matching a pattern
    checked: int  # non-missing values looked at

    def describe(self) -> str:
        seen = f"{self.matches} of {self.checked} values" if self.matches else "its name"
        return f"{self.column} ({', '.join(self.kinds)}: {seen})"


def detect_personal_data(df: pd.DataFrame, *, seed: int = 0) -> tuple[PersonalColumn, ...]:
    """Columns of ``df`` that look like personal data, with counts; no value leaves this function."""
    found = []
    for column in df.columns:
        tokens = _tokens(str(column))
        named = sorted(kind for kind, hints in _NAME_HINTS.items() if tokens & hints)
        values = df[column].dropna()
        if len(values) > SAMPLE:
            values = values.sample(SAMPLE, random_state=seed)
        numeric = pd.api.types.is_integer_dtype(values)
        texts = values.astype(str).str.strip() if numeric or not pd.api.types.is_numeric_dtype(values) else None
        counts: dict[str, int] = {}
        if texts is not None and len(texts):
            for kind, matches in _PATTERNS.items():
                if numeric and kind not in ("national_id", "payment_card", "phone"):
                    continue
                n = int(texts.map(matches).sum())
                share = n / len(texts)
                if n and (kind not in _WEAK or share >= _MOSTLY) and not (numeric and share < _MOSTLY):
                    counts[kind] = n
            if "date_of_birth" in named:
                counts["date_of_birth"] = int(texts.map(lambda v: bool(_DATE.match(v))).sum())
        kinds = tuple(sorted(set(named) | {k for k, n in counts.items() if n}))
        if kinds:
            found.append(
                PersonalColumn(
                    column=str(column),
                    kinds=kinds,
                    by_name=bool(named),
                    matches=max(counts.values(), default=0),
                    checked=int(len(values)),
                )
            )
    return tuple(found)


DECISIONS = ("pseudonymize", "drop", "keep")
_MSG_UNDECIDED = (
    "personal data in {columns}: nothing is written until a person decides what happens to each column; "
    "declare it in the policy, e.g. privacy: {{columns: {{{example}: drop}}}} (pseudonymize needs a key; "
    "keep states the column is not personal data)"
)


@dataclass(frozen=True)
class PrivacyPlan:
    """What happens to each personal-data column, as decided in the policy."""

    found: tuple[PersonalColumn, ...]
    decisions: dict[str, str]

    @property
    def pseudonymize(self) -> tuple[str, ...]:
        return tuple(c for c, d in self.decisions.items() if d == "pseudonymize")

    @property
    def drop(self) -> tuple[str, ...]:
        return tuple(c for c, d in self.decisions.items() if d == "drop")

    def to_dict(self) -> list[dict[str, object]]:
        """Evidence for the data's metadata: names, kinds, counts and decisions; never a value."""
        return [
            {
                "column": c.column,
                "kinds": list(c.kinds),
                "by_name": c.by_name,
                "matches": c.matches,
                "checked": c.checked,
                "decision": self.decisions.get(c.column, "undecided"),
            }
            for c in self.found
        ]


def plan_privacy(
    df: pd.DataFrame,
    decisions: Mapping[str, str],
    *,
    protected: Sequence[str] = (),
) -> PrivacyPlan:
    """Detect personal data and check that the policy decided about every such column.

    Parameters
    ----------
    decisions : mapping
        column -> ``pseudonymize``, ``drop`` or ``keep`` (the policy's ``privacy.columns``, plus the
        columns named to pseudonymize at load).
    protected : list of str
        The target and the sensitive features: they stay readable, so they can be neither
        pseudonymized nor dropped.

    Raises
    ------
    DataValidationError
        Personal data that no decision covers (names the columns and how to declare them).
    InvalidParameterError
        A decision on a protected column, or an unknown decision.
    """
    bad = {c: d for c, d in decisions.items() if d not in DECISIONS}
    if bad:
        raise InvalidParameterError(f"privacy decisions must be one of {DECISIONS}, got {bad}")
    clash = sorted(c for c, d in decisions.items() if c in protected and d != "keep")
    if clash:
        raise InvalidParameterError(
            f"{clash} cannot be pseudonymized or dropped: the target and the sensitive features must stay readable"
        )
    found = detect_personal_data(df)
    undecided = [c for c in found if c.column not in decisions]
    if undecided:
        raise DataValidationError(
            _MSG_UNDECIDED.format(columns=", ".join(c.describe() for c in undecided), example=undecided[0].column)
        )
    present = {c: d for c, d in decisions.items() if c in df.columns}
    return PrivacyPlan(found=found, decisions=present)
