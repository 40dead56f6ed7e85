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


def _minority(values: list[str], n: int = 30_000) -> list[str]:
    """``values`` scattered among ``n`` rows of one placeholder (the rest of the column)."""
    out = ["unknown"] * n
    for i, value in zip(RNG.choice(n, len(values), replace=False), values, strict=True):
        out[i] = value
    return out


# Personal values that fill only part of a column: found by their count, not by their share.
MINORITIES = {
    "phones on 40% of rows, 'unknown' on the rest": (
        "contact",
        _minority([f"+44 20 7946 {i:04d}" for i in range(12_000)]),
        "phone",
    ),
    "five e-mail addresses among 30,000 notes": (
        "remarks",
        _minority(["write to a.b@example.org", "c@example.com", "e@example.net", "g@example.io", "i@example.de"]),
        "email",
    ),
    "three card numbers among 30,000 references": ("ref", _minority([_card(i) for i in range(3)]), "payment_card"),
}


@pytest.mark.parametrize("case", MINORITIES, ids=list(MINORITIES))
def test_found_in_a_minority_of_the_column(case):
    column, values, kind = MINORITIES[case]
    (found,) = detect_personal_data(pd.DataFrame({column: values}))
    assert kind in found.kinds and found.checked == 30_000, found


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


def test_the_statistics_commands_screen_their_inputs_and_write_no_planted_value(adult, tmp_path, capsys):
    """kfp-rai drift and kfp-rai fairness read data no pipeline screened: they refuse personal data
    nobody decided about, never take it as a group, and no planted value reaches any output."""
    from kfp_rai.cli import main

    n = len(adult)
    planted = {
        "email": [f"person{i}@example.org" for i in range(n)],
        "contact": _minority([f"+44 20 7946 {i:04d}" for i in range(n // 3)], n),
        "card_ref": [_card(i) for i in range(n)],
        "applicant": [f"Applicant Number {i}" for i in range(n)],
    }
    data = adult.assign(**planted, pred=np.where(adult["education-num"] > 12, ">50K", "<=50K"))
    data.to_parquet(tmp_path / "data.parquet")
    outputs = [tmp_path / f"out.{ext}" for ext in ("json", "html", "md")]
    write = ["--output", str(outputs[0]), "--html", str(outputs[1]), "--markdown", str(outputs[2])]
    drift = ["drift", "--reference", str(tmp_path / "data.parquet"), "--current", str(tmp_path / "data.parquet")]

    assert main([*drift, *write]) == 2  # nobody decided: refused, naming every column, quoting none
    err = capsys.readouterr().err
    assert all(c in err for c in planted) and "@" not in err and not any(p.exists() for p in outputs)

    policy = tmp_path / "policy.yaml"
    policy.write_text("privacy:\n  columns: {email: drop, contact: drop, card_ref: drop, applicant: pseudonymize}\n")
    saved = tmp_path / "reference.json"
    assert main([*drift, *write, "--policy", str(policy), "--save-reference", str(saved)]) == 0
    fairness = ["fairness", "--data", str(tmp_path / "data.parquet"), "--target", "income", "--prediction", "pred"]
    fairness += ["--positive-label", ">50K", "--n-boot", "50"]
    assert main([*fairness, "--sensitive", "email", *write]) == 2  # a personal column is never a group
    assert "hold values that look like personal data" in capsys.readouterr().err
    fairness += ["--policy", str(policy)]
    assert main([*fairness, "--sensitive", "email", *write]) == 2  # nor can a decision make it one
    assert "must stay readable" in capsys.readouterr().err
    assert main([*fairness, "--sensitive", "sex", "race", *write]) in (0, 1)
    written = {p.name + " (fairness)": p.read_text() for p in outputs}
    capsys.readouterr()
    assert main([*drift, *write, "--policy", str(policy)]) == 0
    written.update({p.name + " (drift)": p.read_text() for p in outputs})
    written[saved.name] = saved.read_text()
    samples = [v for values in planted.values() for v in values[:: max(1, n // 200)] if v != "unknown"]
    for name, text in written.items():
        leaked = [v for v in samples if v in text]
        assert not leaked, f"{name} holds {len(leaked)} planted values, e.g. {leaked[0][:6]}..."
        assert "@example.org" not in text and "+44 20" not in text, name


def test_a_partition_task_never_counts_personal_data_as_groups(tmp_path):
    from kfp.dsl import Artifact, Dataset

    from kfp_rai.components import count_scored_partition
    from kfp_rai.errors import DataValidationError

    parts = tmp_path / "scored"
    parts.mkdir()
    pd.DataFrame(
        {"y": [1, 0] * 100, "p": [1, 1, 0, 0] * 50, "email": [f"p{i}@example.com" for i in range(200)]}
    ).to_parquet(parts / "part-0.parquet")
    with pytest.raises(DataValidationError, match="look like personal data"):
        count_scored_partition.python_func(
            data=Dataset(name="d", uri=str(parts), metadata={}),
            partition="part-0.parquet",
            target="y",
            prediction="p",
            sensitive_features=["email"],
            counts=Artifact(name="c", uri=str(tmp_path / "counts.json"), metadata={}),
        )
    assert not (tmp_path / "counts.json").exists()
