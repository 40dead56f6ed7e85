"""From candidate to production by a person's decision: the registry's signed, chained event log,
the states and aliases derived from it, every decision and every refusal, tampering, two writers,
and a registry on an object store (a real S3 API on loopback)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from kfp_rai.core.verdict import GateStatus, Verdict
from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.policy import Policy
from kfp_rai.production import (
    ModelRegistry,
    RuleBroken,
    approve,
    archive,
    promote,
    read_state,
    reject,
    rollback,
    servable_version,
    verify_registry,
)
from kfp_rai.production._events import LostRace

PASSED = Verdict(GateStatus.PASSED, "every gate passed")


def _register(registry: ModelRegistry, n: int, *, launched_by: str = "ann", verdict: Verdict = PASSED) -> str:
    return registry.register(
        "m",
        model=f"model {n}".encode(),
        model_card=f"# card {n}",
        metadata={},
        verdict=verdict,
        launched_by=launched_by,
    ).version


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    registry = ModelRegistry(str(tmp_path / "registry"))
    for n in (1, 2, 3):
        _register(registry, n)
    return registry


def _events(registry: ModelRegistry, name: str = "m") -> list[tuple[str, str]]:
    return [(e.type, e.version) for e in registry.events(name).read()]


def test_a_version_goes_from_candidate_to_production_and_back_by_peoples_decisions(registry):
    state = read_state(registry, "m")
    assert {v: r.state for v, r in state.versions.items()} == {"1": "candidate", "2": "candidate", "3": "candidate"}
    assert dict(state.aliases) == {}
    approve(registry, "m", "1", by="bob", note="fine")
    first = promote(registry, "m", "1", by="bob", note="first release")
    assert first.details["previous"] is None and first.by == "bob"
    approve(registry, "m", "2", by="carol", note="better")
    promote(registry, "m", "2", by="carol")
    reject(registry, "m", "3", by="dan", note="worse on women")
    state = read_state(registry, "m")
    assert state.aliases["production"] == "2" and state.production_history == ("1", "2")
    assert {v: r.state for v, r in state.versions.items()} == {"1": "approved", "2": "approved", "3": "rejected"}
    assert state.versions["2"].approved_by == "carol"
    back = rollback(registry, "m", by="erin", note="incident 17")  # default: the previous production version
    assert back.version == "1" and back.details["previous"] == "2"
    assert read_state(registry, "m").aliases["production"] == "1"
    rollback(registry, "m", by="erin", note="fixed", to="2")
    archive(registry, "m", "1", by="erin", note="retired")
    state = read_state(registry, "m")
    assert state.aliases["production"] == "2" and state.versions["1"].state == "archived"
    assert _events(registry) == [
        ("registered", "1"),
        ("registered", "2"),
        ("registered", "3"),
        ("approved", "1"),
        ("promoted", "1"),
        ("approved", "2"),
        ("promoted", "2"),
        ("rejected", "3"),
        ("rolled_back", "1"),
        ("rolled_back", "2"),
        ("archived", "1"),
    ]
    assert verify_registry(registry)["problems"] == []


@pytest.mark.parametrize(
    ("steps", "decision", "message"),
    [
        ([], lambda r: promote(r, "m", "1", by="bob"), "version 1 of m is not approved"),
        ([("approve", "1")], lambda r: approve(r, "m", "1", by="x", note="y"), "is approved, not a candidate"),
        ([("reject", "1")], lambda r: promote(r, "m", "1", by="bob"), "is rejected: it can never be promoted"),
        ([("reject", "1")], lambda r: approve(r, "m", "1", by="bob", note="y"), "is rejected, not a candidate"),
        ([("archive", "1")], lambda r: promote(r, "m", "1", by="bob"), "is archived: it can never be promoted"),
        ([("approve", "1"), ("promote", "1")], lambda r: reject(r, "m", "1", by="x", note="y"), "is in production"),
        ([("approve", "1"), ("promote", "1")], lambda r: archive(r, "m", "1", by="x", note="y"), "is in production"),
        ([("approve", "1"), ("promote", "1")], lambda r: promote(r, "m", "1", by="x"), "in production already"),
        ([], lambda r: rollback(r, "m", by="x", note="y"), "there is nothing to roll back"),
        (
            [("approve", "1"), ("promote", "1")],
            lambda r: rollback(r, "m", by="x", note="y"),
            "no earlier production version that may serve again",
        ),
        (
            [("approve", "1"), ("promote", "1")],
            lambda r: rollback(r, "m", by="x", note="y", to="2"),
            "version 2 of m is not approved",
        ),
        ([], lambda r: approve(r, "m", "1", by="ANN ", note="mine"), "ann launched the run that trained version 1"),
        ([], lambda r: approve(r, "m", "9", by="bob", note="y"), "m has no version '9'"),
        ([], lambda r: approve(r, "m", "1", by="bob", note=" "), "an approval says why"),
        ([], lambda r: approve(r, "m", "1", by=" ", note="y"), "every decision names who took it"),
        ([], lambda r: approve(r, "m", "1", by="bob", note="x" * 2001), "--note is limited to 2000"),
    ],
)
def test_every_decision_the_rules_do_not_allow_is_refused_in_one_line(registry, steps, decision, message):
    act = {
        "approve": lambda v: approve(registry, "m", v, by="bob", note="ok"),
        "promote": lambda v: promote(registry, "m", v, by="bob"),
        "reject": lambda v: reject(registry, "m", v, by="bob", note="no"),
        "archive": lambda v: archive(registry, "m", v, by="bob", note="old"),
    }
    for verb, version in steps:
        act[verb](version)
    before = _events(registry)
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        decision(registry)
    assert _events(registry) == before  # a refused decision writes nothing


def test_blocked_and_unlaunched_versions_cannot_be_approved_and_the_policy_waives_only_in_writing(tmp_path):
    registry = ModelRegistry(str(tmp_path / "r"))
    _register(registry, 1, verdict=Verdict(GateStatus.FAILED, "blocked"))
    _register(registry, 2, launched_by="")
    with pytest.raises(RuleBroken, match="nobody can approve what the gates blocked"):
        approve(registry, "m", "1", by="bob", note="please")
    with pytest.raises(RuleBroken, match="recorded no launcher, so separation of duties cannot be checked"):
        approve(registry, "m", "2", by="bob", note="ok")
    with pytest.raises(InvalidParameterError, match="promotion.require_approval false but promotion.exception_reason"):
        Policy.from_dict({"promotion": {"require_approval": False}})
    waive = Policy.from_dict(
        {"promotion": {"require_approval": False, "separation_of_duties": False, "exception_reason": "one-person lab"}}
    )
    event = approve(registry, "m", "2", by="ann", note="my own", policy=waive)
    assert event.details["separation_of_duties_waived"] == "one-person lab"
    _register(registry, 3)
    promoted = promote(registry, "m", "3", by="ann", policy=waive)  # a candidate, approval waived in writing
    assert promoted.details["waiver"] == "one-person lab" and promoted.details["policy_sha256"] == waive.sha256
    state = read_state(registry, "m")
    assert state.versions["3"].state == "candidate" and state.versions["3"].waiver == "one-person lab"
    with pytest.raises(RuleBroken, match="version 1 of m is not eligible"):
        promote(registry, "m", "1", by="ann", policy=waive)


def test_the_policy_a_version_was_registered_with_governs_its_promotion(tmp_path):
    registry = ModelRegistry(str(tmp_path / "r"))
    text = "promotion: {require_approval: false, exception_reason: 'sandbox models only'}\n"
    registry.register(
        "m",
        model=b"m",
        model_card="# c",
        metadata={},
        verdict=PASSED,
        extra={"policy.yaml": text.encode()},
        launched_by="ann",
    )
    assert promote(registry, "m", "1", by="ann").details["waiver"] == "sandbox models only"


def _tamper(registry: ModelRegistry, how: str) -> None:
    events = Path(registry.uri) / "m" / "events"
    for f in events.iterdir():
        os.chmod(f, 0o644)
    if how == "edited":
        path = events / "00000004.event"
        path.write_bytes(path.read_bytes().replace(b'"by":"bob"', b'"by":"eve"'))
    elif how == "removed":
        (events / "00000004.event").unlink()
    elif how == "reordered":
        a, b = events / "00000004.event", events / "00000005.event"
        data = a.read_bytes()
        a.write_bytes(b.read_bytes())
        b.write_bytes(data)
    elif how == "stray":
        (events / "00000006.event.bak").write_bytes(b"x")
    elif how == "relinked":  # a genuine event of another log of the same key, put in place of event 4
        other = ModelRegistry(str(Path(registry.uri).parent / "other"))
        for n in (1, 2, 3):
            _register(other, n)
        approve(other, "m", "2", by="bob", note="ok")
        shutil.copy(Path(other.uri) / "m" / "events" / "00000004.event", events / "00000004.event")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("edited", "event 4 of m in .* fails its signature check"),
        ("removed", "event 4 of m in .* is missing"),
        ("reordered", "is signed as event 5 of 'm': events were moved or reordered"),
        ("stray", "holds '00000006.event.bak', which is not an event"),
        ("relinked", "event 4 of m in .* does not follow event 3"),
    ],
)
def test_an_edited_removed_or_reordered_event_is_refused_by_every_command(registry, how, message, capsys):
    from kfp_rai.cli import main

    approve(registry, "m", "1", by="bob", note="fine")
    promote(registry, "m", "1", by="bob")
    _tamper(registry, how)
    with pytest.raises(IntegrityError, match=message):
        read_state(registry, "m")
    for command in (
        ["list"],
        ["history", "m"],
        ["show", "m", "production"],
        ["approve", "m", "2", "--by", "carol", "--note", "x"],
        ["promote", "m", "1", "--by", "carol"],
        ["rollback", "m", "--by", "carol", "--note", "x"],
    ):
        assert main(["models", *command, "--registry", registry.uri]) == 2, command
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["models", "verify", "--registry", registry.uri]) == 1


def test_a_signed_line_that_is_not_its_canonical_form_and_a_foreign_key_are_refused(registry, tmp_path, monkeypatch):
    from kfp_rai.core.signing import ensure_local_keys, sign_bytes

    path = Path(registry.uri) / "m" / "events" / "00000003.event"
    line = path.read_bytes().split(b"\n")[0]
    duplicated = line[:-1] + b',"by":"eve"}'  # a second "by": a parser keeps the last, the signature covers both
    os.chmod(path, 0o644)
    path.write_bytes(duplicated + b"\n" + base64.b64encode(sign_bytes(duplicated, "test")) + b"\n")
    with pytest.raises(IntegrityError, match="appears twice|not the canonical form"):
        read_state(registry, "m")
    spaced = line.replace(b'","', b'", "', 1)
    path.write_bytes(spaced + b"\n" + base64.b64encode(sign_bytes(spaced, "test")) + b"\n")
    with pytest.raises(IntegrityError, match="not the canonical form"):
        read_state(registry, "m")
    # Every event verifies only with the registry's key.
    monkeypatch.setenv("KFP_RAI_CONFIG_DIR", str(tmp_path / "other-keys"))
    ensure_local_keys()
    other = ModelRegistry(str(tmp_path / "fresh"))
    _register(other, 1)
    read_state(other, "m")
    monkeypatch.undo()
    with pytest.raises(IntegrityError, match="fails its signature check"):
        read_state(other, "m")


def test_a_log_cut_at_its_end_or_rewritten_with_the_key_is_refused_where_it_was_read_before(registry, capsys):
    from kfp_rai.cli import main

    approve(registry, "m", "1", by="bob", note="fine")
    promote(registry, "m", "1", by="bob")
    assert main(["models", "list", "--registry", registry.uri]) == 0
    capsys.readouterr()
    last = Path(registry.uri) / "m" / "events" / "00000005.event"
    saved = last.read_bytes()
    os.chmod(last, 0o644)
    last.unlink()  # the promotion removed: a log that simply ends earlier
    read_state(registry, "m")  # the chain alone cannot tell
    assert main(["models", "list", "--registry", registry.uri]) == 2
    assert "no longer holds event 5 as this user last read it (the log was cut)" in capsys.readouterr().err
    last.write_bytes(saved)
    assert main(["models", "list", "--registry", registry.uri]) == 0


def test_two_writers_one_wins_and_the_other_is_told(registry):
    log = registry.events("m")
    seen = log.read()
    first = log.draft(seen, type="approved", version="1", model_sha256=seen[0].model_sha256, by="bob", time="t")
    second = log.draft(seen, type="approved", version="2", model_sha256=seen[1].model_sha256, by="eve", time="t")
    log.append(first)
    with pytest.raises(LostRace):
        log.append(second)  # it read the log before the first writer appended
    assert _events(registry)[-1] == ("approved", "1")


_WRITER = """
import sys
from kfp_rai.production import ModelRegistry, approve, promote
from kfp_rai.errors import RAIError
registry, version, who = sys.argv[1:]
try:
    approve(ModelRegistry(registry), "m", version, by=who, note="race")
    print("approved")
except RAIError as exc:
    print("refused:", exc)
"""


def test_concurrent_writers_on_a_local_disk_leave_one_valid_chain(registry):
    # Eight processes at once: four approve version 1 (one may), four approve versions 2 and 3.
    jobs = [("1", f"p{i}") for i in range(4)] + [("2", "q0"), ("2", "q1"), ("3", "r0"), ("3", "r1")]
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, registry.uri, v, who], stdout=subprocess.PIPE, text=True)
        for v, who in jobs
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    approvals = [e for e in registry.events("m").read() if e.type == "approved"]
    assert sorted(e.version for e in approvals) == ["1", "2", "3"]  # each version approved exactly once
    assert sum(o == "approved" for o in outputs) == 3
    assert all(o == "approved" or "is approved, not a candidate" in o for o in outputs), outputs
    assert verify_registry(registry)["problems"] == []


def test_the_card_names_its_version_and_show_renders_it_with_its_history(tmp_path, capsys):
    from kfp_rai.cli import main
    from kfp_rai.production import ModelCard
    from kfp_rai.production._candidate import card_files

    card = ModelCard(
        verdict=Verdict(GateStatus.WARNING, "every gate passed, with recorded warnings"),
        model_name="m",
        details={"name": "m"},
        intended_use="tests",
        training={},
        representativeness={},
        validation={},
        explanation={},
        lineage={},
    )
    from kfp_rai.core.report import Subject

    card_json = card.to_dict(Subject(model_name="m", model_version="candidate"))
    assert ModelCard.from_dict(json.loads(json.dumps(card_json))).to_markdown() == card.to_markdown()
    registry = ModelRegistry(str(tmp_path / "r"))
    registry.register(
        "m",
        model=b"m",
        model_card=card.to_markdown(),
        metadata={},
        verdict=card.verdict,
        card_files=card_files(card_json),
        launched_by="ann",
    )
    stored = (tmp_path / "r" / "m" / "1" / "model_card.md").read_text()
    assert "| model | m version 1 |" in stored and "candidate" not in stored
    approve(registry, "m", "1", by="bob", note="reviewed the card")
    html = tmp_path / "card.html"
    assert main(["models", "show", "m", "1", "--registry", registry.uri, "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "m version 1: approved" in out and "approved" in out and "reviewed the card" in out
    page = html.read_text()
    assert (
        "Approvals and deployment history" in page and "reviewed the card" in page and "ELIGIBLE WITH WARNINGS" in page
    )
    assert main(["models", "show", "m", "1", "--registry", registry.uri, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "approved" and [e["type"] for e in shown["history"]] == ["registered", "approved"]


def test_list_history_and_verify_say_what_the_log_says(registry, capsys):
    from kfp_rai.cli import main

    approve(registry, "m", "2", by="bob", note="fine")
    promote(registry, "m", "2", by="bob")
    assert main(["models", "list", "--registry", registry.uri]) == 0
    out = capsys.readouterr().out
    assert "2  " in out and "production" in out and "bob" in out
    assert main(["models", "list", "m", "--registry", registry.uri, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["m"]
    assert listed["aliases"] == {"production": "2"}
    assert [v["state"] for v in listed["versions"]] == ["candidate", "approved", "candidate"]
    assert main(["models", "history", "m", "--registry", registry.uri, "--json"]) == 0
    assert [e["seq"] for e in json.loads(capsys.readouterr().out)] == [1, 2, 3, 4, 5]
    assert main(["models", "verify", "--registry", registry.uri]) == 0
    assert "5 events verified" in capsys.readouterr().out
    # A version whose files were changed is a problem; a signed version with no event, a note.
    card = Path(registry.uri) / "m" / "2" / "model_card.md"
    card.write_text("# edited")
    assert main(["models", "verify", "--registry", registry.uri]) == 1
    assert "changed: model_card.md" in capsys.readouterr().err


def test_a_version_copied_into_anothers_place_is_refused(registry):
    approve(registry, "m", "1", by="bob", note="fine")
    root = Path(registry.uri) / "m"
    shutil.rmtree(root / "2")
    shutil.copytree(root / "1", root / "2")  # a signed, approved version where version 2 should be
    with pytest.raises(IntegrityError, match="holds version 1 of 'm'"):
        servable_version(registry=registry.uri, name="m", ref="2")


def test_promote_with_deploy_writes_the_production_manifest_and_records_it(registry, tmp_path, monkeypatch, capsys):
    import yaml

    from kfp_rai.cli import main

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    approve(registry, "m", "1", by="bob", note="fine")
    manifest = tmp_path / "isvc.yaml"
    args = ["--registry", registry.uri, "--deploy", "--manifest", str(manifest), "--storage-uri", "s3://b/m/1"]
    assert main(["models", "promote", "m", "1", "--by", "bob", *args]) == 0
    assert "wrote the InferenceService of m version 1" in capsys.readouterr().out
    *claims, isvc = yaml.safe_load_all(manifest.read_text())  # the audit volumes first
    assert [c["kind"] for c in claims] == ["PersistentVolumeClaim"] * 2
    env = {e["name"]: e["value"] for e in isvc["spec"]["predictor"]["containers"][0]["env"]}
    promoted = registry.events("m").read()[-2]
    assert promoted.type == "promoted"
    assert base64.b64decode(env["KFP_RAI_APPROVAL_EVENT"]) == registry.events("m").raw(promoted)
    deployed = registry.events("m").read()[-1]
    assert deployed.type == "deployed" and deployed.details["applied"] is False
    assert deployed.details["target"] == str(manifest)


# ----------------------------------------------------------------------------- an object store


def test_a_registry_on_an_object_store_keeps_the_same_history_and_rules(s3, tmp_path):
    from kfp_rai.production import check_registry

    uri = f"s3://mlpipeline/kfp-rai/registry?{s3}"
    assert "m has 0 registered version(s)" in check_registry(uri, "m")
    registry = ModelRegistry(uri)
    _register(registry, 1)
    _register(registry, 2)
    approve(registry, "m", "1", by="bob", note="fine")
    promote(registry, "m", "1", by="bob")
    served = servable_version(registry=uri, name="m")
    assert served.uri == f"s3://mlpipeline/kfp-rai/registry/m/1?{s3}" and served.approval.type == "promoted"
    assert servable_version(model_uri=served.uri).approval.digest == served.approval.digest
    assert verify_registry(registry)["problems"] == []
    # No conditional write through pyarrow: a taken name is noticed before writing, and the chain decides.
    log = registry.events("m")
    seen = log.read()
    stale = log.draft(seen[:-1], type="approved", version="2", model_sha256=seen[1].model_sha256, by="eve", time="t")
    with pytest.raises(LostRace):
        log.append(stale)
    assert [e.type for e in log.read()] == ["registered", "registered", "approved", "promoted"]


def test_concurrent_writers_on_an_object_store_never_break_the_chain(s3):
    """What we claim for object stores: one writer at a time takes each event's number (a claim,
    docs/governance.md), so every writer told its decision landed finds it in the log, and the
    chain verifies."""
    uri = f"s3://mlpipeline/race/registry?{s3}"
    registry = ModelRegistry(uri)
    for n in range(1, 7):
        _register(registry, n)
    results: list[str] = []

    def approve_one(version: str) -> None:
        try:
            approve(ModelRegistry(uri), "m", version, by=f"p{version}", note="race")
            results.append("approved")
        except InvalidParameterError as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=approve_one, args=(str(v),)) for v in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    events = registry.events("m").read()  # verifies every signature and link
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert results == ["approved"] * 6
    assert sorted(e.version for e in events if e.type == "approved") == [str(v) for v in range(1, 7)]
    assert verify_registry(registry)["problems"] == []


def test_the_registry_is_checked_before_anything_is_trained(tmp_path, registry):
    from kfp_rai.production import check_registry

    with pytest.raises(InvalidParameterError, match="registry_uri is empty"):
        check_registry("  ", "m")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidParameterError, match="cannot be written"):
        check_registry(str(tmp_path / "a-file" / "registry"), "m")
    assert "m has 3 registered version(s), none in production yet (3 events verified)" in check_registry(
        registry.uri, "m"
    )
    event = Path(registry.uri) / "m" / "events" / "00000002.event"
    os.chmod(event, 0o644)
    event.write_bytes(event.read_bytes().replace(b'"version":"2"', b'"version":"9"'))
    with pytest.raises(IntegrityError, match="event 2 of m"):
        check_registry(registry.uri, "m")


def test_a_blocked_model_is_named_on_its_branch_and_fails_the_run_only_when_asked():
    from kfp_rai.errors import GateFailedError, RAIError
    from kfp_rai.production import blocked_verdict

    verdict = blocked_verdict("failed", "blocked by the validation gate: x", fail_run=False)
    assert verdict.status is GateStatus.FAILED and verdict.reason.startswith("model blocked, nothing registered")
    with pytest.raises(GateFailedError, match="fail_when_blocked=true"):
        blocked_verdict("not_judged", "too little data", fail_run=True)
    with pytest.raises(RAIError, match="is not blocked"):
        blocked_verdict("warning", "eligible", fail_run=False)


def test_human_written_files_may_live_in_the_store(s3):
    import boto3

    from kfp_rai.discovery import CollectionPlan

    endpoint = "http://" + s3.split("=", 1)[1].split("&", 1)[0]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.put_object(Bucket="mlpipeline", Key="policies/p.yaml", Body=b"validation: {min_accuracy: 0.5}\n")
    uri = f"s3://mlpipeline/policies/p.yaml?{s3}"
    assert Policy.from_yaml(uri).validation.min_accuracy == 0.5
    assert Policy.from_yaml(uri).sha256 == Policy.from_yaml("validation: {min_accuracy: 0.5}").sha256
    with pytest.raises(
        InvalidParameterError, match="the policy at s3://mlpipeline/policies/gone.yaml.* cannot be read"
    ):
        Policy.from_yaml(f"s3://mlpipeline/policies/gone.yaml?{s3}")
    client.put_object(Bucket="mlpipeline", Key="plans/big.yaml", Body=b"#" * (1 << 20 | 1))
    with pytest.raises(InvalidParameterError, match="is over the 24 KiB a data collection plan may be"):
        CollectionPlan.from_yaml(f"s3://mlpipeline/plans/big.yaml?{s3}")


def test_rollbacks_undo_promotions_one_at_a_time(registry):
    for version in ("1", "2", "3"):
        approve(registry, "m", version, by="bob", note="fine")
        promote(registry, "m", version, by="bob")
    assert rollback(registry, "m", by="ops", note="v3 broken").version == "2"
    assert rollback(registry, "m", by="ops", note="v2 broken too").version == "1"  # never forward to 3
    with pytest.raises(RuleBroken, match="no earlier production version"):
        rollback(registry, "m", by="ops", note="again")
    assert rollback(registry, "m", by="ops", note="back to 3", to="3").version == "3"
    assert rollback(registry, "m", by="ops", note="and back").version == "1"


def test_names_and_notes_are_plain_one_line_text_and_compared_as_people_read_them(registry):
    for by, note in (("bob", "ok\n7  approved  1  carol"), ("bob\r\x1b[2K", "ok"), ("ann\u200b", "ok")):
        with pytest.raises(InvalidParameterError, match="control or invisible characters"):
            approve(registry, "m", "1", by=by, note=note)
    with pytest.raises(RuleBroken, match="separation of duties"):
        approve(registry, "m", "1", by="ＡＮＮ", note="full-width letters are still ann")
    with pytest.raises(InvalidParameterError, match="archiving says why"):
        archive(registry, "m", "2", by="bob", note=" ")
    reject(registry, "m", "2", by="bob", note="worse")
    with pytest.raises(RuleBroken, match="is rejected already"):
        archive(registry, "m", "2", by="bob", note="tidy")  # rejected is final


def test_a_pipeline_holding_the_model_key_cannot_approve_or_forge_an_approval(registry, monkeypatch, tmp_path):
    """Registrations are signed with the model key the pipeline's tasks hold; a person's decisions
    with the decision key, which never reaches a pipeline: neither writing nor forging works."""
    import base64

    from kfp_rai.core.signing import DECISION_KEYS, MODEL_KEYS, private_pem, verify_pem
    from kfp_rai.production._events import encode_event

    model_key, decision_public = private_pem(MODEL_KEYS), verify_pem(DECISION_KEYS)
    monkeypatch.setenv("KFP_RAI_CONFIG_DIR", str(tmp_path / "a-pipeline-pod"))  # no local keys at all
    monkeypatch.setenv("KFP_RAI_SIGNING_KEY", model_key.decode())
    monkeypatch.setenv("KFP_RAI_DECISION_VERIFY_KEY", decision_public.decode())
    read_state(registry, "m")  # it reads and verifies the history
    with pytest.raises(IntegrityError, match="cannot sign .*no decision key"):
        approve(registry, "m", "1", by="bob", note="from a pipeline")
    log = registry.events("m")
    seen = log.read()
    forged = log.draft(seen, type="approved", version="1", model_sha256=seen[0].model_sha256, by="bob", time="t",
                       person=False)  # fmt: skip
    path = Path(registry.uri) / "m" / "events" / f"{forged.seq:08d}.event"
    path.write_bytes(encode_event(forged, MODEL_KEYS))  # an approval signed with the model key
    with pytest.raises(IntegrityError, match="not signed with the decision key"):
        read_state(registry, "m")
    path.unlink()
    # A signature's other valid form (s -> n - s) is refused: one signed record, one byte form.
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    from kfp_rai.core.signing import _P256_ORDER

    first = Path(registry.uri) / "m" / "events" / "00000001.event"
    line, signature, _ = first.read_bytes().split(b"\n")
    r, s = decode_dss_signature(base64.b64decode(signature))
    flipped = base64.b64encode(encode_dss_signature(r, _P256_ORDER - s))
    os.chmod(first, 0o644)
    first.write_bytes(line + b"\n" + flipped + b"\n")
    with pytest.raises(IntegrityError, match="signature in another form"):
        read_state(registry, "m")


def test_a_version_path_is_judged_by_the_registry_it_really_is_in(registry, tmp_path):
    approve(registry, "m", "1", by="bob", note="fine")
    promote(registry, "m", "1", by="bob")
    reject(registry, "m", "2", by="bob", note="worse")
    root = Path(registry.uri) / "m"
    for spelled in (str(root / "." / "2"), str(root / "2") + "/"):
        assert servable_version(model_uri=spelled).in_registry and servable_version(model_uri=spelled).approval is None
    link = tmp_path / "link-to-2"
    link.symlink_to(root / "2")
    assert servable_version(model_uri=str(link)).in_registry  # judged by its registry, not as a copy
    assert servable_version(model_uri=str(root / "1")).approval.type == "promoted"


def test_an_approved_version_that_is_not_production_gets_no_deployable_manifest(registry, capsys):
    from kfp_rai.cli import main

    approve(registry, "m", "1", by="bob", note="fine")
    args = ["deploy-manifest", "--registry", registry.uri, "--model", "m", "--storage-uri", "s3://b/m/1"]
    assert main([*args, "--version", "1"]) == 2
    assert "approved but not in production" in capsys.readouterr().err


def test_concurrent_registrations_on_an_object_store_each_get_their_own_version(s3):
    uri = f"s3://mlpipeline/many/registry?{s3}"
    versions: list[str] = []

    def register(n: int) -> None:
        versions.append(_register(ModelRegistry(uri), n))

    threads = [threading.Thread(target=register, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    registry = ModelRegistry(uri)
    state = read_state(registry, "m")
    assert sorted(versions, key=int) == sorted(state.versions, key=int) and len(set(versions)) == 8
    assert verify_registry(registry)["problems"] == []


def _race(fs, directory: str, name: str, writers: int, *, claim: bool) -> list[int]:
    """``writers`` threads, released at once, each checking ``name`` is free, pausing (the window a
    slow network gives) and writing its number; returns the numbers that believed they won."""
    import time

    from kfp_rai.production._claim import Contended, holding

    target = f"{directory}/{name}"
    won: list[int] = []
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        start.wait()
        try:
            with holding(fs, directory, name) if claim else contextlib.nullcontext():
                if fs.get_file_info(target).type != pafs.FileType.NotFound:
                    return
                time.sleep(0.2)
                with fs.open_output_stream(target) as out:
                    out.write(str(n).encode())
                won.append(n)
        except Contended:
            return

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return won


def test_on_an_object_store_one_writer_at_a_time_holds_a_name(s3):
    fs, root = pafs.FileSystem.from_uri(f"s3://mlpipeline/claims?{s3}")
    # The window is real: checked-then-written without a claim, several writers all believe they won.
    assert len(_race(fs, f"{root}/plain", "00000001.event", 6, claim=False)) > 1
    for attempt in range(3):
        won = _race(fs, f"{root}/claimed{attempt}", "00000001.event", 6, claim=True)
        assert len(won) == 1
        with fs.open_input_stream(f"{root}/claimed{attempt}/00000001.event") as fh:
            assert fh.read() == str(won[0]).encode()  # the survivor is the one that was told it won
        left = fs.get_file_info(pafs.FileSelector(f"{root}/claimed{attempt}"))
        assert [i.base_name for i in left] == ["00000001.event"]  # every claim was taken back


def test_a_claim_left_by_a_dead_writer_holds_off_others_only_for_its_lease(tmp_path, monkeypatch):
    from kfp_rai.production import _claim

    fs = pafs.LocalFileSystem()
    directory = str(tmp_path / "events")
    os.makedirs(directory)
    dead = Path(directory) / f"{_claim.claim_prefix('00000002.event')}dead"
    dead.write_bytes(b"")
    monkeypatch.setattr(_claim, "ATTEMPTS", 2)
    monkeypatch.setattr(_claim, "_WAIT", (0.0, 0.01))
    with (
        pytest.raises(
            _claim.Contended, match=r"claimed by \.00000002\.event\.claim-dead, another writer \(ignored from "
        ),
        _claim.holding(fs, directory, "00000002.event"),
    ):
        pass
    os.utime(dead, (0, 0))  # claimed long ago: its writer is gone
    other = Path(directory) / f"{_claim.claim_prefix('00000003.event')}other"
    other.write_bytes(b"")
    with _claim.holding(fs, directory, "00000002.event"):
        pass  # held despite it, and the dead claim removed; a claim on another name is none of its business
    assert sorted(p.name for p in Path(directory).iterdir()) == [other.name]


def test_a_claim_is_taken_back_when_listing_the_claims_fails(tmp_path):
    """An error (or an interrupt) between putting a claim and reading the claims leaves none behind."""
    from kfp_rai.production import _claim

    class Failing:  # the calls holding() makes, the listing failing as a throttled store's does
        def __init__(self) -> None:
            self.fs = pafs.LocalFileSystem()

        def __getattr__(self, attr):
            return getattr(self.fs, attr)

        def get_file_info(self, _selector):
            raise OSError("SlowDown: please reduce your request rate")

    directory = str(tmp_path / "events")
    with pytest.raises(OSError, match="SlowDown"), _claim.holding(Failing(), directory, "00000001.event"):
        pass
    assert list(Path(directory).iterdir()) == []


def test_listing_a_model_while_another_writer_creates_it_never_fails(tmp_path):
    """The first registrations of a model at once: one creates its directory while another lists it.
    pyarrow's local listing raised FileNotFoundError there (it did in 484 of 3,000 tries)."""
    registry = ModelRegistry(str(tmp_path / "registry"))
    root = Path(registry.uri)
    for i in range(400):
        maker = threading.Thread(target=(root / f"m{i}").mkdir)
        maker.start()
        assert registry.versions(f"m{i}") == [] and registry.events(f"m{i}").read() == ()
        maker.join()
