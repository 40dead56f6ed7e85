"""Signed model directories: signed as a whole with OpenSSF model-signing (private-key method,
ECDSA P-256) and verified with the public key before anything in them is read.

The signature (``model.sig`` inside the directory) covers every file by name and sha256, so a
changed, added or removed file, ``metadata.json`` included, is refused, as is a directory signed
by another key or not signed at all. Whoever can write the directory cannot write a valid
signature without the private key.

Keys, first match wins:

- private key (signs; the training and registration tasks only): ``KFP_RAI_SIGNING_KEY`` (PEM
  text, e.g. from a Kubernetes Secret) or the file named by ``KFP_RAI_SIGNING_KEY_FILE`` (no
  group or other access); else the local default ``<config dir>/keys/signing-key.pem``;
- public key (verifies; every other task and the serving app): ``KFP_RAI_VERIFY_KEY`` (PEM text)
  or the file named by ``KFP_RAI_VERIFY_KEY_FILE``; else derived from the private key; else the
  local default ``<config dir>/keys/verify-key.pem``.

:func:`ensure_local_keys` creates the local pair on first use (``kfp-rai run`` calls it), in a
directory of mode 0700 with the private key at 0600. Tasks never create keys: without one they
fail closed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kfp_rai.core.files import PathLike
from kfp_rai.errors import IntegrityError

SIGNATURE_FILE = "model.sig"
SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV = "KFP_RAI_SIGNING_KEY", "KFP_RAI_SIGNING_KEY_FILE"
VERIFY_KEY_ENV, VERIFY_KEY_FILE_ENV = "KFP_RAI_VERIFY_KEY", "KFP_RAI_VERIFY_KEY_FILE"
_PRIVATE, _PUBLIC = "signing-key.pem", "verify-key.pem"
_MSG_NO_KEY = (
    "no signing key: set {env} (PEM text) or {env_file}; locally `kfp-rai run` creates a key pair in {dir} on "
    "first use; in a cluster create the Secret kfp-rai-signing (see manifests/base/kustomization.yaml)"
)


def config_dir() -> Path:
    """kfp-rai's per-user configuration directory: ``$KFP_RAI_CONFIG_DIR``, else
    ``$XDG_CONFIG_HOME/kfp-rai``, else ``~/.config/kfp-rai``."""
    if explicit := os.environ.get("KFP_RAI_CONFIG_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kfp-rai"


def _keys_dir() -> Path:
    return config_dir() / "keys"


def _private_file(path: Path, what: str) -> bytes:
    """Read a private file, refusing one that others could read or replace."""
    if not path.is_file():
        raise IntegrityError(f"{what} {path} does not exist")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise IntegrityError(f"{what} {path} is accessible to other users (mode {mode & 0o777:o}): chmod 600 it")
    if hasattr(os, "getuid") and path.stat().st_uid != os.getuid():
        raise IntegrityError(f"{what} {path} belongs to another user: use a key file you own")
    return path.read_bytes()


def ensure_local_keys() -> tuple[Path, bool]:
    """The local key pair's directory, creating the pair if it does not exist yet.

    Returns the directory and whether the pair was created now.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    keys = _keys_dir()
    private, public = keys / _PRIVATE, keys / _PUBLIC
    if private.exists() and public.exists():
        _private_file(private, "the signing key")
        return keys, False
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys, 0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return keys, True


def _signing_pem() -> bytes | None:
    if text := os.environ.get(SIGNING_KEY_ENV):
        return text.encode("utf-8")
    if path := os.environ.get(SIGNING_KEY_FILE_ENV):
        return _private_file(Path(path), f"{SIGNING_KEY_FILE_ENV}=")
    default = _keys_dir() / _PRIVATE
    return _private_file(default, "the signing key") if default.exists() else None


def verify_pem() -> bytes:
    """The public key that verifies signatures (see the module docstring for where it comes from)."""
    if text := os.environ.get(VERIFY_KEY_ENV):
        return text.encode("utf-8")
    if path := os.environ.get(VERIFY_KEY_FILE_ENV):
        if not Path(path).is_file():
            raise IntegrityError(f"{VERIFY_KEY_FILE_ENV}={path} does not exist: mount the verification key")
        return Path(path).read_bytes()
    if private := _signing_pem():
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(private, password=None)
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    default = _keys_dir() / _PUBLIC
    if default.is_file():
        return default.read_bytes()
    raise IntegrityError(
        f"no verification key: set {VERIFY_KEY_ENV} (PEM text) or {VERIFY_KEY_FILE_ENV}; locally the key pair "
        f"is in {_keys_dir()}"
    )


@contextlib.contextmanager
def _key_file(pem: bytes) -> Iterator[Path]:
    """model-signing reads keys from files: a private temporary one, removed right after use."""
    scratch = Path(tempfile.mkdtemp(prefix="kfp-rai-key-"))  # mode 0700
    try:
        path = scratch / "key.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        yield path
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _hashing() -> Any:
    from model_signing import hashing

    # Every file counts, .git* ones too: nothing in the directory escapes the signature but itself.
    return hashing.Config().set_ignored_paths(  # type: ignore[no-untyped-call]
        paths=[SIGNATURE_FILE], ignore_git_paths=False
    )


def sign_model_dir(path: PathLike) -> Path:
    """Sign every file of the directory ``path`` as a whole; return the signature's path."""
    from model_signing import signing

    directory = Path(path)
    pem = _signing_pem()
    if pem is None:
        raise IntegrityError(_MSG_NO_KEY.format(env=SIGNING_KEY_ENV, env_file=SIGNING_KEY_FILE_ENV, dir=_keys_dir()))
    with _key_file(pem) as key, tempfile.TemporaryDirectory(prefix="kfp-rai-sig-") as scratch:
        unsigned = Path(scratch) / SIGNATURE_FILE
        try:
            config = signing.Config()  # type: ignore[no-untyped-call]
            config.use_elliptic_key_signer(private_key=key).set_hashing_config(_hashing()).sign(directory, unsigned)
        except ValueError as exc:  # not an EC key, a curve model-signing does not support, ...
            raise IntegrityError(f"cannot sign {directory} with the configured key: {exc}") from exc
        target = directory / SIGNATURE_FILE
        shutil.copyfile(unsigned, target.with_suffix(".sig.tmp"))
        os.replace(target.with_suffix(".sig.tmp"), target)
    return target


_CHANGED = re.compile(r"Hash mismatch for \\*'([^'\\]+)")
_ADDED = re.compile(r"Extra files found in model \\*'[^'\\]*\\*': ([^\]\"'\\]+)")
_REMOVED = re.compile(r"Missing files in model \\*'[^'\\]*\\*': ([^\]\"'\\]+)")


def _explain(message: str) -> str:
    """model-signing's refusal in our terms: which files changed, were added or removed, or that
    another key signed (its own message carries raw digests)."""
    if "Key mismatch" in message:
        return "it was signed by another key than the verification key"
    parts = [
        f"{what}: {', '.join(sorted({n.strip() for found in pattern.findall(message) for n in found.split(',')}))}"
        for what, pattern in (("changed", _CHANGED), ("added", _ADDED), ("removed", _REMOVED))
        if pattern.search(message)
    ]
    return "; ".join(parts) or " ".join(message.split())[:300]


def verify_model_dir(path: PathLike) -> None:
    """Verify the directory's signature with the public key.

    Raises
    ------
    IntegrityError
        Not signed, signed by another key, or any file changed, added or removed since signing.
    """
    from model_signing import verifying

    directory = Path(path)
    signature = directory / SIGNATURE_FILE
    if not directory.is_dir():
        raise IntegrityError(f"{directory} is not a model directory")
    if not signature.is_file():
        raise IntegrityError(f"{directory} is not signed ({SIGNATURE_FILE} is missing): refusing to load it")
    with _key_file(verify_pem()) as key:
        try:
            config = verifying.Config()  # type: ignore[no-untyped-call]
            config.use_elliptic_key_verifier(public_key=key).set_hashing_config(_hashing()).verify(directory, signature)
        except Exception as exc:  # noqa: BLE001 - whatever model-signing refuses, we refuse in one line
            raise IntegrityError(f"{directory} fails its signature check ({_explain(str(exc))}): refusing it") from exc
