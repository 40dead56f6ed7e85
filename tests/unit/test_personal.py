"""Personal data is found however it is spelled or typed, and no message quotes it."""

import numpy as np
import pandas as pd
import pytest

from kfp_rai.discovery import detect_personal_data, plan_privacy, prepare_dataset
from kfp_rai.errors import DataValidationError

N = 200
RNG = np.random.default_rng(7)


def _card(i: int) -> str:
    from kfp_rai.discovery._personal import luhn

    body = f"4{i:014d}"
    return next(body + str(d) for d in range(10) if luhn(body + str(d)))


def _names() -> list[str]:
    given = ["Alice", "Bob", "Carla", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivan", "Jo"]
    family = ["Smith", "Okafor", "Nguyen", "Garcia", "Kowalski", "Haddad", "Larsen", "Ito", "Moreau", "Silva"]
    return [f"{given[i % 10]} {family[i // 10 % 10]}{i // 100 or ''}" for i in range(N)]


def _cards_with_a_gap() -> pd.Series:
    cards = pd.Series([float(_card(i)) for i in range(N)])
    cards[3] = np.nan  # one missing value makes the column float
    return cards


# A column as a user might bring it, with neutral or unusual spelling, and what it must be found as.
EVASIONS = {
    "e-mail inside free text": ("note", [f"call me, or write to p{i}@example.com" for i in range(N)], "email"),
    "cards as floats with a gap": ("amount_ref", _cards_with_a_gap(), "payment_card"),
    "EMAILADDRESS": ("EMAILADDRESS", ["x"] * N, "email"),
    "Social Security Number": ("Social Security Number", RNG.integers(10**8, 10**9, N), "national_id"),
    "9-digit ids, neutral name": ("ref", RNG.integers(10**8, 10**9, N), "long_number"),
    "CustomerNumber": ("CustomerNumber", [f"K{i}" for i in range(N)], "identifier"),
    "home_addr": ("home_addr", ["a"] * N, "address"),
    "names, neutral name": ("applicant", _names(), "identifier_or_free_text"),
    "born": ("born", [f"19{60 + i % 30}-0{1 + i % 9}-1{i % 9}" for i in range(N)], "date_of_birth"),
    "Telefono": ("Telefono", ["x"] * N, "phone"),
}


@pytest.mark.parametrize("case", EVASIONS, ids=list(EVASIONS))
def test_found_however_it_is_spelled(case):
    column, values, kind = EVASIONS[case]
    found = detect_personal_data(pd.DataFrame({column: values}))
    assert found and kind in found[0].kinds, found


def test_ordinary_columns_are_not_flagged(adult):
    assert detect_personal_data(adult) == ()


def _people(**extra):
    base = pd.DataFrame(
        {
            "y": ["yes", "no"] * (N // 2),
            "sex": ["F", "M", "M", "F"] * (N // 4),
            "hours": RNG.integers(10, 60, N),
        }
    )
    return base.assign(**extra)


def test_a_column_named_like_personal_data_is_refused_without_quoting_it():
    df = _people().rename(columns={"hours": "alice.header@example.com"})
    with pytest.raises(DataValidationError) as info:
        plan_privacy(df, {})
    assert "columns [3]" in str(info.value) and "alice" not in str(info.value)


def test_personal_values_in_a_protected_column_cannot_be_decided_away():
    df = _people()
    df.loc[:2, "sex"] = [f"p{i}@example.com" for i in range(3)]
    for decisions in ({}, {"sex": "keep"}):
        with pytest.raises(DataValidationError) as info:
            plan_privacy(df, decisions, protected=["y", "sex"])
        message = str(info.value)
        assert "correct those rows" in message and "drop" not in message and "@" not in message


@pytest.mark.parametrize(
    ("target", "label"),
    [("contact", "yes"), ("y", "yes")],
)
def test_label_messages_never_quote_a_rare_value(target, label):
    df = _people(contact=[f"p{i}@example.com" for i in range(N)])
    df.loc[0, "y"] = "stray.person@example.com"
    with pytest.raises(DataValidationError) as info:
        prepare_dataset(df, target=target, positive_label=label, sensitive_features=["sex"], decisions={}, key=None)
    assert "@" not in str(info.value), str(info.value)
    # Decided and dropped, the stray value in the target still is not quoted.
    with pytest.raises(DataValidationError) as info:
        prepare_dataset(
            df.drop(columns="contact"),
            target="y",
            positive_label="yes",
            sensitive_features=["sex"],
            decisions={},
            key=None,
        )
    assert "@" not in str(info.value)


def test_a_stray_value_no_pattern_knows_is_counted_not_quoted():
    df = _people()
    df.loc[0, "y"] = "Stray Person"
    with pytest.raises(DataValidationError) as info:
        prepare_dataset(df, target="y", positive_label="yes", sensitive_features=["sex"], decisions={}, key=None)
    message = str(info.value)
    assert "'no', 'yes'" in message and "1 value on fewer than 5 rows, not shown" in message
    assert "Stray" not in message
