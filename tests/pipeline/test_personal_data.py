"""Personal data never leaks: the lifecycle runs on data holding e-mail addresses, phone numbers,
national ids, payment cards, IPs, IBANs, dates of birth, names and customer ids, and then every
output is searched for each raw value and for the keys: artifacts, logs, run.json, reports, the
registry, the model file, and the audit log of the served model."""

import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from kfp_rai.core.tables import read_table

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
HMAC_KEY = "pseudonymization-key-for-tests-0123456789"
AUDIT_KEY = "audit-key-for-the-pii-test-0123456789abc"
DECISIONS = {
    "email": "drop",
    "phone": "drop",
    "ssn": "drop",
    "card_number": "drop",
    "ip_address": "drop",
    "iban": "drop",
    "date_of_birth": "drop",
    "full_name": "pseudonymize",
    "customer_id": "pseudonymize",
}


def _luhn_card(i: int) -> str:
    from kfp_rai.discovery._personal import luhn

    body = f"4{i:014d}"
    return next(body + str(d) for d in range(10) if luhn(body + str(d)))


def _iban(i: int) -> str:
    bban = f"WEST{i:014d}"
    numeric = int("".join(str(int(ch, 36)) for ch in bban + "GB00"))
    return f"GB{98 - numeric % 97:02d}{bban}"


def _with_personal_data(df: pd.DataFrame, offset: int) -> pd.DataFrame:
    ids = range(offset, offset + len(df))
    return df.assign(
        email=[f"person{i}@example.org" for i in ids],
        phone=[f"+44 20 7946 {i % 10000:04d}" for i in ids],
        ssn=[f"{100 + i % 500:03d}-{10 + i % 80:02d}-{1000 + i % 8000:04d}" for i in ids],
        card_number=[_luhn_card(i) for i in ids],
        ip_address=[f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in ids],
        iban=[_iban(i) for i in ids],
        date_of_birth=[f"19{50 + i % 50}-0{1 + i % 9}-1{i % 9}" for i in ids],
        full_name=[f"Given{i} Family{i}" for i in ids],
        customer_id=[f"C{i:07d}" for i in ids],
    )


def _text(path: Path) -> str:
    """Everything a file holds, decompressed: parquet as CSV text, zip members (skops) unpacked."""
    data = path.read_bytes()
    if data[:4] == b"PAR1":
        return pq.read_table(path).to_pandas().to_csv()
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "".join(archive.read(name).decode("latin-1") for name in archive.namelist())
    return data.decode("latin-1")


@pytest.fixture(scope="module")
def pii_run(tmp_path_factory):
    import os

    base = tmp_path_factory.mktemp("pii")
    train = _with_personal_data(read_table("bundled:adult"), 0)
    current = _with_personal_data(read_table("bundled:adult-test"), 100_000)
    train.to_csv(base / "people.csv", index=False)
    current.to_csv(base / "people-now.csv", index=False)
    policy = (REPO / "examples/policies/adult-record-warnings.yaml").read_text()
    policy += "privacy:\n  columns:\n" + "".join(f"    {c}: {d}\n" for c, d in DECISIONS.items())
    (base / "policy.yaml").write_text(policy)
    saved = os.environ.get("KFP_RAI_HMAC_KEY")
    os.environ["KFP_RAI_HMAC_KEY"] = HMAC_KEY  # the kfp.local tasks inherit it
    yield base, train, current
    if saved is None:
        os.environ.pop("KFP_RAI_HMAC_KEY", None)
    else:
        os.environ["KFP_RAI_HMAC_KEY"] = saved


def test_undeclared_personal_data_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    from kfp_rai.cli import main

    monkeypatch.chdir(tmp_path)
    people = _with_personal_data(read_table("bundled:adult").head(400), 0)
    people.to_csv(tmp_path / "people.csv", index=False)
    assert main(["run", "--data", str(tmp_path / "people.csv"), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "personal data in email (email: 400 of 400 values)" in err and "person0@example.org" not in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "registry").exists()


def test_no_raw_value_and_no_key_reaches_any_output(pii_run, lifecycle, monkeypatch):
    from kfp_rai.serving import AuditLog, ModelService, RequestRejected, load_served_model

    base, train, current = pii_run
    run = lifecycle(
        base,
        "--quiet",
        "--data",
        str(base / "people.csv"),
        "--current",
        str(base / "people-now.csv"),
        "--policy",
        str(base / "policy.yaml"),
        "--collection-plan",  # Adult's rows with personal columns added: Adult's plan describes them
        str(REPO / "src/kfp_rai/data/adult/collection_plan.yaml"),
        "--model-name",
        "income",
    )
    assert run.code == 0, run.record["error"]
    assert run.record["stages"]["production"]["registered"] is True
    found = {c["column"]: c for c in run.record["stages"]["discovery"]["personal_data"]}
    assert {c: found[c]["decision"] for c in DECISIONS} == DECISIONS  # evidence: names, kinds, counts
    assert found["email"]["kinds"] == ["email"] and found["card_number"]["kinds"] == ["payment_card"]
    features = json.loads(
        (run.registry / "income" / run.record["stages"]["production"]["version"] / "metadata.json").read_text()
    )["features"]
    assert not set(features) & set(DECISIONS)  # no personal column is a model input

    # Serve the registered model and send requests carrying ids and personal values.
    version = run.registry / "income" / run.record["stages"]["production"]["version"]
    audit = AuditLog(base / "audit" / "audit.jsonl", key=AUDIT_KEY.encode(), create=True)
    service = ModelService(
        load_served_model(str(version)), audit=audit, state_dir=base / "state", hmac_key=HMAC_KEY.encode()
    )
    row = current.drop(columns=["income", *DECISIONS]).iloc[0].to_dict()
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    service.predict({"instances": [{**row, "id": current["customer_id"].iloc[0]}]})
    with pytest.raises(RequestRejected):
        service.predict({"instances": [{**row, "age": current["email"].iloc[1], "id": current["customer_id"].iloc[1]}]})
    service.close()

    raw = pd.concat([train.sample(300, random_state=0), current.sample(300, random_state=0)])
    needles = {v for column in DECISIONS for v in raw[column].astype(str)}
    needles |= {current[c].iloc[i] for c in DECISIONS for i in (0, 1)}  # the served request's own values
    needles |= {HMAC_KEY, AUDIT_KEY}
    outputs = [
        p for root in (run.out, run.registry, base / "audit", base / "state") for p in root.rglob("*") if p.is_file()
    ]
    assert (
        len(outputs) > 25
        and any(p.suffix == ".skops" for p in outputs)
        and any(p.suffix == ".parquet" for p in outputs)
    )
    leaks = {
        str(p.relative_to(base)): sorted(n for n in needles if n in text)[:3]
        for p in outputs
        if (text := _text(p)) and any(n in text for n in needles)
    }
    assert leaks == {}
