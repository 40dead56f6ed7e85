"""Signed model directories, the exact skops trust list, and a registry that is atomic and signed."""

import io
import json
import os
import shutil
import zipfile
from dataclasses import asdict

import pytest
import skops.io as sio

from kfp_rai.core.model_dir import (
    MODEL_FILE,
    TRUSTED_NODES,
    load_model,
    load_model_dir,
    model_types,
    read_model_metadata,
    save_model_dir,
)
from kfp_rai.core.signing import SIGNATURE_FILE, ensure_local_keys, sign_model_dir, verify_model_dir, verify_pem
from kfp_rai.errors import IntegrityError
from kfp_rai.production import ModelRegistry
from kfp_rai.training import train_model


@pytest.fixture(scope="module")
def trained(adult):
    return train_model(
        adult.sample(3000, random_state=1), target="income", positive_label=">50K", sensitive_features=["sex"]
    )


@pytest.fixture
def model_dir(tmp_path, trained):
    model, summary = trained
    save_model_dir(model, tmp_path / "model", {**asdict(summary), "decision_threshold": 0.5})
    return tmp_path / "model"


def _refused(path, fragment):
    with pytest.raises(IntegrityError) as info:
        load_model_dir(path)
    assert fragment in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_a_signed_directory_loads_and_every_tampering_is_refused(model_dir, tmp_path):
    load_model_dir(model_dir)  # clean: loads
    meta = json.loads((model_dir / "metadata.json").read_text())
    # Whoever can write the directory: a new threshold and a matching-looking metadata file...
    (model_dir / "metadata.json").write_text(json.dumps({**meta, "decision_threshold": 0.0}))
    _refused(model_dir, "fails its signature check (changed: metadata.json)")
    (model_dir / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    sign_model_dir(model_dir)  # (restore: the test key may sign)
    for added in ("extra.txt", ".gitignore"):
        (model_dir / added).write_text("x")
        _refused(model_dir, f"(added: {added})")
        (model_dir / added).unlink()
    moved = shutil.move(model_dir / MODEL_FILE, tmp_path / "elsewhere")
    _refused(model_dir, f"(removed: {MODEL_FILE})")
    shutil.move(moved, model_dir / MODEL_FILE)
    (model_dir / SIGNATURE_FILE).unlink()
    _refused(model_dir, "is not signed")


def test_a_directory_signed_by_another_key_is_refused(model_dir, monkeypatch, tmp_path):
    ours = os.environ["KFP_RAI_CONFIG_DIR"]
    monkeypatch.setenv("KFP_RAI_CONFIG_DIR", str(tmp_path / "someone-else"))
    ensure_local_keys()
    sign_model_dir(model_dir)  # a valid signature, by the wrong key
    monkeypatch.setenv("KFP_RAI_CONFIG_DIR", ours)
    _refused(model_dir, "signed by another key")
    with pytest.raises(IntegrityError):
        read_model_metadata(model_dir)  # reading only the metadata verifies too


def test_keys_are_private_and_a_readable_key_file_is_refused(tmp_path, monkeypatch, model_dir):
    keys, created = ensure_local_keys()
    assert not created  # the session's pair
    assert oct(keys.stat().st_mode & 0o777) == "0o700"
    assert oct((keys / "signing-key.pem").stat().st_mode & 0o777) == "0o600"
    leaked = tmp_path / "key.pem"
    shutil.copy(keys / "signing-key.pem", leaked)
    os.chmod(leaked, 0o644)
    monkeypatch.setenv("KFP_RAI_SIGNING_KEY_FILE", str(leaked))
    with pytest.raises(IntegrityError, match="accessible to other users"):
        sign_model_dir(model_dir)


@pytest.mark.parametrize(
    ("env", "mode", "fragment"),
    [
        ("KFP_RAI_AUDIT_KEY_FILE", 0o640, "accessible to other users"),
        ("KFP_RAI_AUDIT_KEY_FILE", 0o620, "writable by other users"),
        ("KFP_RAI_HMAC_KEY_FILE", 0o666, "writable by other users"),
        ("KFP_RAI_HMAC_KEY_FILE", 0o604, "accessible to other users"),
        ("KFP_RAI_VERIFY_KEY_FILE", 0o646, "writable by other users"),
    ],
)
def test_every_key_file_is_held_to_the_same_rule(tmp_path, monkeypatch, env, mode, fragment):
    from kfp_rai.discovery import hmac_key_from_env
    from kfp_rai.serving import audit_key_from_env

    keys, _ = ensure_local_keys()
    key = tmp_path / "key"
    key.write_bytes((keys / "verify-key.pem").read_bytes() if "VERIFY" in env else b"k" * 32)
    os.chmod(key, mode)
    monkeypatch.setenv(env, str(key))
    read = {
        "KFP_RAI_AUDIT_KEY_FILE": audit_key_from_env,
        "KFP_RAI_HMAC_KEY_FILE": hmac_key_from_env,
        "KFP_RAI_VERIFY_KEY_FILE": verify_pem,
    }[env]
    with pytest.raises(IntegrityError, match=fragment):
        read()
    os.chmod(key, 0o644 if "VERIFY" in env else 0o600)  # a public key may be read by anyone
    assert read() == key.read_bytes().strip() or read() == key.read_bytes()


def test_a_lost_public_key_is_derived_again_and_a_lost_private_key_is_said(tmp_path, monkeypatch, model_dir):
    monkeypatch.setenv("KFP_RAI_CONFIG_DIR", str(tmp_path / "cfg"))
    keys, created = ensure_local_keys()
    assert created
    sign_model_dir(model_dir)
    (keys / "verify-key.pem").unlink()
    assert ensure_local_keys() == (keys, False)
    verify_model_dir(model_dir)  # the same pair
    (keys / "signing-key.pem").unlink()
    with pytest.raises(IntegrityError, match="exists without its signing key"):
        ensure_local_keys()


def test_without_a_key_nothing_is_signed(tmp_path, monkeypatch, model_dir):
    monkeypatch.setenv("KFP_RAI_CONFIG_DIR", str(tmp_path / "empty"))
    with pytest.raises(IntegrityError, match="no signing key"):
        sign_model_dir(model_dir)


def test_the_trust_list_is_exactly_what_training_writes(model_dir, adult):
    from kfp_rai.core.model_dir import model_bytes
    from kfp_rai.policy import TrainingPolicy

    written = model_types(model_dir / MODEL_FILE)
    for method in ("correlation_remover", "exponentiated_gradient", "threshold_optimizer"):
        policy = TrainingPolicy(mitigation=method, max_iter=20, mitigation_max_iter=2)
        model, _ = train_model(adult, target="income", positive_label=">50K", sensitive_features=["sex"], policy=policy)
        written |= model_types(model_bytes(model))
    assert written == TRUSTED_NODES


def test_other_shapes_of_data_need_nothing_beyond_the_trust_list():
    import numpy as np
    import pandas as pd

    from kfp_rai.core.model_dir import model_bytes

    rng = np.random.default_rng(0)
    n = 400
    data = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, n),
            "flag": rng.random(n) > 0.5,
            "cat": rng.choice(["x", "y", None], n),
            "g": rng.choice(["m", "f"], n),
            "y": rng.choice(["yes", "no"], n),
        }
    )
    for columns in (["a", "b", "g", "y"], list(data.columns)):
        model, _ = train_model(data[columns], target="y", positive_label="yes", sensitive_features=["g"])
        assert model_types(model_bytes(model)) <= TRUSTED_NODES


def test_the_bytes_verified_are_the_bytes_loaded(model_dir, tmp_path, monkeypatch):
    """Whoever can write the directory swaps model.skops for a payload right after the checks read
    it: nothing may reopen it by path, so the swap changes nothing and runs nothing."""
    import kfp_rai.core.signing as signing

    read_once = signing.read_flat_dir
    shutil.copytree(model_dir, tmp_path / "pristine")
    payload = _crafted(tmp_path / "payload.skops", tmp_path / "pwned")

    def read_then_swap(path):
        files = read_once(path)
        shutil.copy(payload, model_dir / MODEL_FILE)
        return files

    monkeypatch.setattr(signing, "read_flat_dir", read_then_swap)
    model, meta = load_model_dir(model_dir)
    assert hasattr(model, "predict_proba") and meta["sha256"]
    assert not (tmp_path / "pwned").exists()

    def read_then_remove(path):
        files = read_once(path)
        shutil.rmtree(path)  # any later open by path fails
        return files

    shutil.rmtree(model_dir)
    shutil.copytree(tmp_path / "pristine", model_dir)
    monkeypatch.setattr(signing, "read_flat_dir", read_then_remove)
    model, _ = load_model_dir(model_dir)
    assert not model_dir.exists() and hasattr(model, "predict_proba")


def test_links_and_subdirectories_are_refused_but_a_linked_directory_is_fine(model_dir, tmp_path):
    linked = tmp_path / "linked"
    linked.symlink_to(model_dir, target_is_directory=True)  # a mounted volume, a `current` link
    load_model_dir(linked)
    (model_dir / "sub").mkdir()
    _refused(model_dir, "'sub'")
    (model_dir / "sub").rmdir()
    real = tmp_path / "meta-elsewhere.json"
    shutil.move(model_dir / "metadata.json", real)
    (model_dir / "metadata.json").symlink_to(real)
    _refused(model_dir, "symbolic link")


def _crafted(path, marker):
    """A skops file whose loading runs code: ConstructorFromReduceNode calls the callable it names.
    The callable lives in sklearn, which the old prefix-based trust list accepted."""
    code = f"open({str(marker)!r}, 'w').write('code ran at load')"
    schema = {
        "__class__": "assert_run_python_script_without_output",
        "__module__": "sklearn.utils._testing",
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [
                {
                    "__class__": "str",
                    "__module__": "builtins",
                    "__loader__": "JsonNode",
                    "content": json.dumps(code),
                    "is_json": True,
                    "__id__": 1,
                },
                {
                    "__class__": "str",
                    "__module__": "builtins",
                    "__loader__": "JsonNode",
                    "content": json.dumps("^never matches$"),
                    "is_json": True,
                    "__id__": 2,
                },
            ],
            "__id__": 3,
        },
        "__id__": 4,
        "protocol": 2,
        "_skops_version": "0.16.0",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    path.write_bytes(buffer.getvalue())
    return path


def test_a_crafted_model_file_runs_nothing(tmp_path):
    from kfp_rai.core.files import sha256_file

    payload = _crafted(tmp_path / "model.skops", tmp_path / "pwned")
    # The payload is real: trusted the old way (anything under sklearn.), loading it runs its code.
    old_rule = [t for t in sio.get_untrusted_types(file=payload) if t.startswith(("sklearn.", "numpy.", "scipy."))]
    assert old_rule == ["sklearn.utils._testing.assert_run_python_script_without_output"]
    sio.load(payload, trusted=old_rule)
    assert (tmp_path / "pwned").read_text() == "code ran at load"
    (tmp_path / "pwned").unlink()
    # The exact list refuses it before skops builds anything.
    with pytest.raises(IntegrityError, match="names what kfp-rai never writes"):
        load_model(payload, expected_sha256=sha256_file(payload))
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("module", "name", "loader"),
    [
        ("numpy.testing._private.utils", "runstring", "FunctionNode"),
        ("scipy.io", "loadmat", "ConstructorFromReduceNode"),
        ("os", "system", "ConstructorFromReduceNode"),
        ("builtins", "eval", "FunctionNode"),
        ("sklearn.pipeline", "Pipeline", "MethodNode"),  # a trusted class through a node kind we never write
        ("numpy.random._generator", "Generator", "TypeNode"),  # a trusted class and node kind, never paired
    ],
)
def test_names_outside_the_list_are_refused_before_loading(tmp_path, monkeypatch, module, name, loader):
    from kfp_rai.core.files import sha256_file

    schema = {
        "__class__": name,
        "__module__": module,
        "__loader__": loader,
        "content": {},
        "protocol": 2,
        "_skops_version": "0.16.0",
        "__id__": 1,
    }
    path = tmp_path / "model.skops"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    monkeypatch.setattr(sio, "load", lambda *a, **k: pytest.fail("skops.load was reached"))
    with pytest.raises(IntegrityError, match="names what kfp-rai never writes"):
        load_model(path, expected_sha256=sha256_file(path))


def _with_generator(bit_generator: str) -> bytes:
    """A skops file of a dict holding numpy's default generator, its bit generator renamed."""
    import numpy as np

    data = sio.dumps({"rng": np.random.default_rng(0)})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    schema = json.loads(files["schema.json"])
    schema["content"]["rng"]["content"]["bit_generator"]["content"]["bit_generator"]["content"] = json.dumps(
        bit_generator
    )
    files["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["seed", "set_bit_generator", "save", "MT19937"])
def test_a_generator_naming_another_bit_generator_is_refused_in_one_line(name, monkeypatch):
    from kfp_rai.core.files import sha256_bytes
    from kfp_rai.core.model_dir import load_model_bytes

    genuine = _with_generator("PCG64")
    assert load_model_bytes(genuine, expected_sha256=sha256_bytes(genuine))["rng"].bit_generator.state
    crafted = _with_generator(name)
    monkeypatch.setattr(sio, "loads", lambda *a, **k: pytest.fail("skops was reached"))
    with pytest.raises(IntegrityError, match=rf"names what kfp-rai never writes.*numpy.random.{name} \(bit generator"):
        load_model_bytes(crafted, expected_sha256=sha256_bytes(crafted))


def test_whatever_skops_still_refuses_is_one_line(monkeypatch):
    from kfp_rai.core.files import sha256_bytes
    from kfp_rai.core.model_dir import load_model_bytes

    genuine = _with_generator("PCG64")

    def refuse(*args, **kwargs):
        raise ValueError("Expected a numpy.random bit generator, got 'seed'.\nThis is probably due to ...")

    monkeypatch.setattr(sio, "loads", refuse)
    with pytest.raises(IntegrityError) as info:
        load_model_bytes(genuine, expected_sha256=sha256_bytes(genuine))
    message = str(info.value)
    assert "\n" not in message and "cannot be built (ValueError: Expected a numpy.random" in message


def test_a_registry_version_is_complete_and_signed_or_absent(tmp_path, monkeypatch):
    import kfp_rai.production._registry as registry_module

    registry = ModelRegistry(str(tmp_path / "reg"))
    first = registry.register("m", model=b"one", model_card="# card", metadata={})
    assert {p.name for p in (tmp_path / "reg" / "m" / "1").iterdir()} == {
        "model.skops",
        "model_card.md",
        "metadata.json",
        SIGNATURE_FILE,
    }
    verify_model_dir(tmp_path / "reg" / "m" / "1")
    # A registration that dies before it is signed leaves no version and no numbered directory.
    monkeypatch.setattr(
        registry_module, "sign_files", lambda files, shown_as: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        registry.register("m", model=b"two", model_card="# card", metadata={})
    monkeypatch.undo()
    assert registry.versions("m") == ["1"] and sorted(p.name for p in (tmp_path / "reg" / "m").iterdir()) == [
        "1",
        "events",  # the model's history: version 1's registered event, nothing of the interrupted one
    ]
    assert [(e.type, e.version) for e in registry.events("m").read()] == [("registered", "1")]
    # Re-running a registration registers nothing twice.
    assert registry.register("m", model=b"one", model_card="# card", metadata={}).version == first.version
    assert registry.register("m", model=b"one", model_card="# other card", metadata={}).version == "2"
    # An unsigned or tampered version is not served from the registry.
    (tmp_path / "reg" / "m" / "2" / "model_card.md").write_text("# edited")
    with pytest.raises(IntegrityError, match=r"\(changed: model_card.md\)"):
        registry.get("m", "2")
