"""What happens to personal data, as a person decided in the policy (:class:`PrivacyPlan`: every
column :mod:`._personal` finds needs a decision, or nothing is written), and pseudonymization of
identifier columns with a keyed hash (HMAC-SHA256).

The same value and key always give the same pseudonym, so joins and audit trails still work,
while the raw identifier cannot be recovered without the key. The key comes from the environment
(``KFP_RAI_HMAC_KEY``, or a file named by ``KFP_RAI_HMAC_KEY_FILE``); in a cluster both the
pipeline tasks and the serving app get it from the Secret ``kfp-rai-pseudonymization``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from kfp_rai.core.files import read_key_file
from kfp_rai.discovery._dataset import DatasetSummary, validate_dataset
from kfp_rai.discovery._personal import PersonalColumn, detect_personal_data, personal_column_names
from kfp_rai.errors import DataValidationError, InvalidParameterError

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
                "by_value": list(c.by_value),
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
    found: Sequence[PersonalColumn] | None = None,
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
    found : list of PersonalColumn, optional
        What :func:`detect_personal_data` found, when the caller ran it column by column (then
        ``df`` only needs the columns' names).

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
    named = personal_column_names(list(df.columns))
    if named:
        raise DataValidationError(
            f"the names of columns {named} (1 = the first) look like personal data themselves (an e-mail address, "
            "a card or id number): rename them; column names appear in every report"
        )
    clash = sorted(c for c, d in decisions.items() if c in protected and d != "keep")
    if clash:
        raise InvalidParameterError(
            f"{clash} cannot be pseudonymized or dropped: the target and the sensitive features must stay readable"
        )
    found = tuple(found) if found is not None else detect_personal_data(df)
    in_protected = [c for c in found if c.column in protected and c.by_value]
    if in_protected:
        raise DataValidationError(
            f"the target or sensitive features {', '.join(c.describe() for c in in_protected)} hold values that "
            "look like personal data; their values appear in every report, so no decision can keep them: "
            "correct those rows, or choose other columns"
        )
    undecided = [c for c in found if c.column not in decisions]
    if undecided:
        raise DataValidationError(
            _MSG_UNDECIDED.format(columns=", ".join(c.describe() for c in undecided), example=undecided[0].column)
        )
    present = {c: d for c, d in decisions.items() if c in df.columns}
    return PrivacyPlan(found=found, decisions=present)


# A data set streamed rather than loaded (the drift and fairness commands, partitioned pipelines) is
# screened on its first rows: enough to see every column's kinds of values, bounded in memory.
SCREEN_ROWS = 1_000_000


def screen_stream(
    data: Any,
    columns: Sequence[str],
    *,
    decisions: Mapping[str, str] | None = None,
    protected: Sequence[str] = (),
) -> PrivacyPlan:
    """:func:`plan_privacy` for streamed data (a :class:`~kfp_rai.stats.stream.Batches`): every
    column name, and the values of ``columns`` in the first :data:`SCREEN_ROWS` rows. Whatever will
    reach an output — group labels, categories, ranges — is screened before it is read further."""
    import pyarrow as pa

    named = personal_column_names(list(data.schema.names))
    if named:
        raise DataValidationError(
            f"the names of columns {named} of {data.name} (1 = the first) look like personal data themselves: "
            "rename them; column names appear in every report"
        )
    if not columns:
        return PrivacyPlan(found=(), decisions={})
    batches, rows = [], 0
    for batch in data.read(list(columns), progress=False):
        batches.append(batch)
        rows += batch.num_rows
        if rows >= SCREEN_ROWS:
            break
    if not batches:
        return PrivacyPlan(found=(), decisions={})
    head = pa.Table.from_batches(batches).slice(0, SCREEN_ROWS)
    del batches
    # One column at a time in pandas: the Arrow head is compact (text stays dictionary-encoded), its
    # pandas form is not (a Python string per row), so memory holds one column's, not all of them.
    found = [f for name in head.column_names for f in detect_personal_data(head.select([name]).to_pandas())]
    return plan_privacy(head.schema.empty_table().to_pandas(), dict(decisions or {}), protected=protected, found=found)


PSEUDONYM_CHARS = 16
MIN_KEY_BYTES = 16  # a short key can be brute-forced from known identifiers
_MSG_NO_KEY = (
    "pseudonymizing {cols} needs a key: set KFP_RAI_HMAC_KEY (or KFP_RAI_HMAC_KEY_FILE); in a cluster "
    "create the Secret kfp-rai-pseudonymization (key hmac-key) in the namespace the pipeline runs in "
    "(kubeflow) and, with the same value, in kfp-rai for the serving app"
)


def hmac_key_from_env() -> bytes | None:
    """The pseudonymization key from the environment, or None when none is configured."""
    if value := os.environ.get("KFP_RAI_HMAC_KEY"):
        return value.strip().encode("utf-8")
    if path := os.environ.get("KFP_RAI_HMAC_KEY_FILE"):
        return read_key_file(path, "KFP_RAI_HMAC_KEY_FILE=").strip()
    return None


def check_key(key: bytes) -> bytes:
    """Refuse a key short enough to brute-force from known identifiers."""
    if len(key) < MIN_KEY_BYTES:
        raise InvalidParameterError(
            f"the pseudonymization key has {len(key)} bytes, fewer than {MIN_KEY_BYTES}: use a random one, "
            "e.g. python3 -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return key


def pseudonym(value: object, key: bytes) -> str:
    """The first 16 hex digits of HMAC-SHA256(key, str(value)); read identifiers as text
    (``read_table(..., text_columns=...)``) so ``000123`` and ``123`` stay different."""
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def pseudonymize_columns(
    df: pd.DataFrame, columns: Sequence[str], *, key: bytes | None, protected: Sequence[str] = ()
) -> pd.DataFrame:
    """Return a copy of ``df`` with ``columns`` replaced by HMAC pseudonyms (missing stays missing).

    Parameters
    ----------
    columns : list of str
        Identifier columns (names, customer numbers, ...).
    key : bytes or None
        Required when ``columns`` is not empty; at least ``MIN_KEY_BYTES`` long.
    protected : list of str
        Columns that must stay readable (the target, the sensitive features measured for fairness).
    """
    if not columns:
        return df
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(f"columns to pseudonymize {missing} are not in the data")
    clash = sorted(set(columns) & set(protected))
    if clash:
        raise InvalidParameterError(
            f"{clash} cannot be pseudonymized: the target and the sensitive features must stay readable"
        )
    repeated = sorted({c for c in columns if list(columns).count(c) > 1})
    if repeated:
        raise InvalidParameterError(f"columns to pseudonymize {repeated} are named more than once")
    if not key:
        raise InvalidParameterError(_MSG_NO_KEY.format(cols=list(columns)))
    check_key(key)
    out: pd.DataFrame = df.copy()
    for col in columns:
        values = out[col]
        out[col] = values.map(lambda v: pseudonym(v, key), na_action="ignore").astype("string")
    return out


def prepare_dataset(
    df: pd.DataFrame,
    *,
    target: str,
    positive_label: str,
    sensitive_features: Sequence[str],
    decisions: Mapping[str, str],
    key: bytes | None,
) -> tuple[pd.DataFrame, DatasetSummary, PrivacyPlan]:
    """Check a loaded data set and apply the policy's decisions about personal data, before
    anything is written.

    Detects personal data and refuses any column no decision covers, validates the data
    (:func:`validate_dataset`), drops the columns decided ``drop`` and pseudonymizes those decided
    ``pseudonymize`` (which needs ``key``).

    Returns
    -------
    (DataFrame, DatasetSummary, PrivacyPlan)
        The data as it may be written, its summary, and the plan (evidence: names and counts).
    """
    protected = [target, *sensitive_features]
    # Personal data first: no later message (about labels, groups) may quote a value of it.
    plan = plan_privacy(df, decisions, protected=protected)
    summary = validate_dataset(df, target=target, positive_label=positive_label, sensitive_features=sensitive_features)
    out = df.drop(columns=list(plan.drop))
    out = pseudonymize_columns(out, plan.pseudonymize, key=key, protected=protected)
    return out, summary, plan


def load_labelled(
    source: str,
    *,
    target: str,
    positive_label: str,
    sensitive_features: Sequence[str],
    pseudonymize: Sequence[str] = (),
    privacy: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, DatasetSummary, PrivacyPlan]:
    """Read a labelled data set and prepare it (:func:`prepare_dataset`): the policy's privacy
    decisions and the columns to ``pseudonymize`` (key from ``KFP_RAI_HMAC_KEY``), as every task
    that loads data does."""
    from kfp_rai.core.tables import read_table

    decisions = {**dict(privacy or {}), **dict.fromkeys(pseudonymize, "pseudonymize")}
    to_pseudonymize = [c for c, d in decisions.items() if d == "pseudonymize"]
    return prepare_dataset(
        read_table(source, text_columns=to_pseudonymize),
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        decisions=decisions,
        key=hmac_key_from_env() if to_pseudonymize else None,
    )
