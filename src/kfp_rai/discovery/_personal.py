"""Personal data found before anything is written: by column name and by what the values look like.

Detection reports column names and counts, never a value. What happens to a column is a human
decision written into the policy (``privacy.columns``, checked and applied by :mod:`._privacy`):
``pseudonymize`` (HMAC, keyed), ``drop``, or ``keep`` (a reviewer's statement that the column is not
personal data after all). Personal data nobody decided about is refused: nothing is trained on it,
written with it or logged.

Value patterns (on text values; national ids, cards and phones also on whole numbers, integral
floats included):

- ``email``: local@domain.tld, alone or anywhere inside free text
- ``phone``: international or national numbers with separators (+44 20 7946 0958, (555) 123-4567);
  a column counts when most of its values look like one (digits alone are too common), or, for a
  text column, when most of its *distinct* values do and at least 20 of them (phone numbers among
  a placeholder such as "unknown" repeated on most rows)
- ``national_id``: US social security numbers (123-45-6789, not 000/666/9xx areas), UK National
  Insurance numbers (AB123456C)
- ``payment_card``: 13 to 19 digits passing the Luhn check
- ``ip_address``: IPv4 and IPv6 addresses
- ``iban``: country code, check digits and account, passing the ISO 13616 mod-97 check
- ``date_of_birth``: dates, in a column whose name says birth, born or dob
- ``identifier_or_free_text``: a text column whose values are mostly distinct (at least half of
  them, and 50 or more): names, customer numbers, comments; a model would learn each value as a
  category and carry it in its encoder
- ``long_number``: a whole-number column of mostly distinct values of 7 or more digits (account,
  customer, phone or card numbers): its minimum and maximum would reach the reports

Column names are matched by word (``home_addr``, ``dateOfBirth``) and, for unambiguous words, inside
the name (``EMAILADDRESS``, ``Telefono``, ``SocialSecurityNumber``). A column *named* like an e-mail
address, card number or other value pattern is refused outright: column names reach every report.

The target and the sensitive features stay readable in every report, so personal-data *values* in
them cannot be decided away: the data must be corrected (a name alone, e.g. ``birth_country``, can
be declared ``keep``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

# Every distinct value of a column is checked (so a handful of e-mail addresses among 30,000 rows is
# found), up to this many distinct values; beyond it a seeded sample of this many distinct values.
MAX_DISTINCT = 200_000
_MOSTLY = 0.5  # share of values a weak pattern (phone) must match to flag a column
_WEAK_MIN_DISTINCT = 20  # ... or of distinct text values, at least this many

# Whole words of a column name (short or ambiguous hints match only as a word)...
_NAME_HINTS = {
    "email": {"email", "mail", "e-mail"},
    "phone": {"phone", "mobile", "telephone", "tel", "fax", "cell"},
    "national_id": {"ssn", "nino", "passport", "national", "taxid", "tin", "sin"},
    "payment_card": {"card", "creditcard", "pan", "ccnumber"},
    "ip_address": {"ip", "ipaddress", "ipv4", "ipv6"},
    "iban": {"iban", "bic", "swift"},
    "date_of_birth": {"dob", "birth", "birthday", "birthdate", "born"},
    "name": {"name", "firstname", "lastname", "surname", "fullname", "forename", "nombre", "nom"},
    "address": {"address", "addr", "street", "postcode", "zipcode", "zip"},
    "identifier": {"customerid", "userid", "patientid", "clientid", "accountid", "employeeid", "memberid"},
}
# ...and unambiguous ones anywhere inside it, whatever the case or separators (EMAILADDRESS).
_NAME_PARTS = {
    "email": ("email", "emailaddress"),
    "phone": ("phone", "telefon", "telephone", "mobilenumber", "cellnumber"),
    "national_id": ("socialsecurity", "nationalinsurance", "passport", "taxpayer"),
    "payment_card": ("creditcard", "cardnumber", "debitcard"),
    "iban": ("iban",),
    "date_of_birth": ("birth", "geburt"),
    "name": ("firstname", "lastname", "surname", "fullname", "forename", "givenname", "familyname"),
    "address": ("address", "street", "postcode", "zipcode", "postalcode"),
    "identifier": ("customernumber", "customerid", "accountnumber", "membernumber", "patientid", "employeeid"),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_EMAIL_INSIDE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_DISTINCT_SHARE, _DISTINCT_MIN = 0.5, 50  # a text column this distinct is identifiers or free text
_LONG_DIGITS = 7
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
    "email": lambda v: bool(_EMAIL_INSIDE.search(v)) if "@" in v else False,
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


def _name_kinds(column: str) -> list[str]:
    tokens = _tokens(column)
    joined = re.sub(r"[^a-z0-9]", "", column.lower())
    return sorted(
        kind
        for kind in _NAME_HINTS.keys() | _NAME_PARTS.keys()
        if tokens & _NAME_HINTS.get(kind, set()) or any(part in joined for part in _NAME_PARTS.get(kind, ()))
    )


def _whole_numbers(values: pd.Series) -> pd.Series | None:
    """Integer values as digit strings (integral floats too: one missing value makes a column of
    card numbers float); None for a column that holds anything else."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return None
    if pd.api.types.is_integer_dtype(values):
        return values.astype(str)
    floats = values.astype(float)
    if len(floats) == 0 or not ((floats == floats.round()) & (floats.abs() < 2**63)).all():
        return None
    return floats.astype("int64").astype(str)


@dataclass(frozen=True)
class PersonalColumn:
    """A column that looks like personal data: by its name, by its values, or both."""

    column: str
    kinds: tuple[str, ...]
    by_name: bool
    by_value: tuple[str, ...]  # the kinds its values showed (not its name)
    matches: int  # values matching a pattern (distinct values, for identifiers and free text)
    checked: int  # non-missing values looked at

    def describe(self) -> str:
        if not self.by_value:
            seen = "its name"
        elif self.by_value == ("identifier_or_free_text",):
            seen = f"{self.matches} distinct of {self.checked} values"
        else:
            seen = f"{self.matches} of {self.checked} values"
        return f"{self.column} ({', '.join(self.kinds)}: {seen})"


def personal_column_names(columns: Sequence[object]) -> list[int]:
    """Positions (1-based) of column names that themselves look like personal data (an e-mail
    address, a card number, ...): such a name would reach every report."""
    return [
        i
        for i, column in enumerate(columns, start=1)
        if any(match(str(column).strip()) for kind, match in _PATTERNS.items() if kind not in _WEAK)
    ]


def _matching(values: pd.Series, rows_of: pd.Series, match: Callable[[str], bool]) -> tuple[int, int]:
    """(rows, distinct values) among ``values`` (distinct, as text) that ``match``; ``rows_of``
    holds each one's number of rows, in the same order."""
    hit = values.map(match).to_numpy(dtype=bool)
    return int(rows_of.to_numpy()[hit].sum()), int(hit.sum())


def detect_personal_data(df: pd.DataFrame, *, seed: int = 0) -> tuple[PersonalColumn, ...]:
    """Columns of ``df`` that look like personal data, with counts; no value leaves this function."""
    found = []
    for column in df.columns:
        named = _name_kinds(str(column))
        values = df[column].dropna()
        if pd.api.types.is_bool_dtype(values) or (
            pd.api.types.is_numeric_dtype(values) and _whole_numbers(values.head(1000)) is None
        ):  # true/false, or numbers with fractions (a sample says so cheaply): no pattern to match
            if named:
                found.append(PersonalColumn(str(column), tuple(sorted(set(named))), True, (), 0, int(len(values))))
            continue
        # Each distinct value once, with its number of rows: counted on the values as they are (a
        # text column from parquet is categorical: no string per row is made), then written as text.
        by_value = values.value_counts(sort=False)
        by_value = by_value[by_value > 0]  # a categorical's unused categories
        distinct_values = pd.Series(by_value.index, dtype=values.dtype if len(by_value) else object)
        digits = _whole_numbers(distinct_values)
        numeric = digits is not None
        is_text = not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        keys = digits if numeric else distinct_values.astype(str).str.strip() if is_text else None
        total = int(by_value.sum())
        counts: dict[str, int] = {}
        if keys is not None and total:
            every = pd.Series(by_value.to_numpy(), index=keys.to_numpy()).groupby(level=0, sort=False).sum()
            distinct = len(every)
            rows_of = every.sample(MAX_DISTINCT, random_state=seed) if distinct > MAX_DISTINCT else every
            kept = pd.Series(rows_of.index.astype(str), dtype=object)
            for kind, matches in _PATTERNS.items():
                if numeric and kind not in ("national_id", "payment_card", "phone"):
                    continue
                n, n_distinct = _matching(kept, rows_of, matches)
                share = n / total
                if not n or (numeric and share < _MOSTLY):
                    continue
                if kind in _WEAK and share < _MOSTLY:
                    mostly_distinct = n_distinct >= _WEAK_MIN_DISTINCT and n_distinct >= _MOSTLY * len(kept)
                    if numeric or not mostly_distinct:
                        continue
                counts[kind] = n
            if "date_of_birth" in named:
                counts["date_of_birth"] = _matching(kept, rows_of, lambda v: bool(_DATE.match(v)))[0]
            if not counts and distinct >= _DISTINCT_MIN and distinct >= _DISTINCT_SHARE * total:
                lengths = pd.Series(every.index.astype(str)).str.lstrip("-").str.len().to_numpy()
                long = int(every.to_numpy()[lengths >= _LONG_DIGITS].sum()) if numeric else 0
                if not numeric:
                    counts["identifier_or_free_text"] = distinct
                elif long >= _DISTINCT_SHARE * total:
                    counts["long_number"] = long
        kinds = tuple(sorted(set(named) | {k for k, n in counts.items() if n}))
        if kinds:
            found.append(
                PersonalColumn(
                    column=str(column),
                    kinds=kinds,
                    by_name=bool(named),
                    by_value=tuple(sorted(k for k, n in counts.items() if n)),
                    matches=max(counts.values(), default=0),
                    checked=int(len(values)),
                )
            )
    return tuple(found)


_STRONG = ("email", "national_id", "payment_card", "ip_address", "iban")


def personal_values(values: Sequence[object]) -> dict[str, int]:
    """How many of ``values`` (categories, bin edges: what a summary stores) match each strong
    personal-data pattern; no value is returned. Whole numbers are checked as digit strings."""
    found: dict[str, int] = {}
    for value in values:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            text = str(int(value))
        else:
            text = str(value).strip()
        for kind in _STRONG:
            if _PATTERNS[kind](text):
                found[kind] = found.get(kind, 0) + 1
    return found
