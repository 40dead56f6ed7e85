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

from kfp_rai.core.files import PathLike, atomic_write_bytes, read_key_file
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
    return read_key_file(path, what, private=True)


def ensure_local_keys() -> tuple[Path, bool]:
    """The local key pair's directory, creating the pair if it does not exist yet.

    Returns the directory and whether the pair was created now.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    keys = _keys_dir()
    private, public = keys / _PRIVATE, keys / _PUBLIC
    if private.exists():
        pem = _private_file(private, "the signing key")
        if not public.exists():  # the public half can always be derived again
            key = serialization.load_pem_private_key(pem, password=None)
            public.write_bytes(
                key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        return keys, False
    if public.exists():
        raise IntegrityError(
            f"{public} exists without its signing key {private}: restore the signing key (models it signed "
            f"verify only with this pair), or move {keys} aside to start a new pair"
        )
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
        return read_key_file(path, f"{VERIFY_KEY_FILE_ENV}=", private=False)
    if private := _signing_pem():
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(private, password=None)
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    default = _keys_dir() / _PUBLIC
    if default.is_file():
        return read_key_file(default, "the verification key", private=False)
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


MAX_DIR_BYTES = 2 << 30  # a model directory larger than this is refused rather than read into memory


def read_flat_dir(path: PathLike) -> dict[str, bytes]:
    """Every file of a flat directory, each read exactly once (then checked, hashed and loaded from
    these bytes, never reopened: whoever can write the directory cannot swap a file between the
    checks and the load).

    The directory path may be a symbolic link (a mounted volume); entries may not: a link, a
    subdirectory, a FIFO or a device is refused, as is a directory over 2 GiB.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise IntegrityError(f"{directory} is not a model directory")
    files: dict[str, bytes] = {}
    total = 0
    for name in sorted(os.listdir(directory)):
        entry = directory / name
        try:
            fd = os.open(entry, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:  # ELOOP: a symbolic link; EISDIR, EACCES, ...
            kind = "a symbolic link" if entry.is_symlink() else "unreadable"
            raise IntegrityError(f"{directory} holds {name!r}, which is {kind} ({exc.strerror}): refusing it") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise IntegrityError(f"{directory} holds {name!r}, which is not a regular file: refusing it")
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_DIR_BYTES - total + 1)
        total += len(data)
        if total > MAX_DIR_BYTES:
            raise IntegrityError(f"{directory} holds over {MAX_DIR_BYTES >> 30} GiB: not a kfp-rai model directory")
        files[name] = data
    return files


@contextlib.contextmanager
def _private_copy(files: dict[str, bytes]) -> Iterator[Path]:
    """model-signing works on directories: the exact bytes given, in a private one (mode 0700)."""
    scratch = Path(tempfile.mkdtemp(prefix="kfp-rai-signed-"))
    try:
        for name, data in files.items():
            (scratch / name).write_bytes(data)
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def sign_files(files: dict[str, bytes], shown_as: PathLike) -> bytes:
    """The signature (``model.sig``'s content) over exactly these files, by the signing key."""
    from model_signing import signing

    pem = _signing_pem()
    if pem is None:
        raise IntegrityError(_MSG_NO_KEY.format(env=SIGNING_KEY_ENV, env_file=SIGNING_KEY_FILE_ENV, dir=_keys_dir()))
    unsigned = {name: data for name, data in files.items() if name != SIGNATURE_FILE}
    with _key_file(pem) as key, _private_copy(unsigned) as copy, tempfile.TemporaryDirectory() as out:
        try:
            config = signing.Config()  # type: ignore[no-untyped-call]
            config.use_elliptic_key_signer(private_key=key).set_hashing_config(_hashing()).sign(
                copy, Path(out) / SIGNATURE_FILE
            )
        except ValueError as exc:  # not an EC key, a curve model-signing does not support, ...
            raise IntegrityError(f"cannot sign {shown_as} with the configured key: {exc}") from exc
        return (Path(out) / SIGNATURE_FILE).read_bytes()


def sign_model_dir(path: PathLike) -> Path:
    """Sign every file of the directory ``path`` as a whole; return the signature's path.

    The files are read once and those bytes are signed, so a file changed while signing fails
    verification rather than being signed.
    """
    directory = Path(path)
    signature = sign_files(read_flat_dir(directory), directory)
    target = directory / SIGNATURE_FILE
    atomic_write_bytes(target, signature)
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


def verify_files(files: dict[str, bytes], shown_as: PathLike) -> dict[str, bytes]:
    """Verify a directory's files, read once (:func:`read_flat_dir`), against their signature with
    the public key; return the signed files (the signature left out).

    Raises
    ------
    IntegrityError
        Not signed, signed by another key, or any file changed, added or removed since signing.
    """
    from model_signing import verifying

    if SIGNATURE_FILE not in files:
        raise IntegrityError(f"{shown_as} is not signed ({SIGNATURE_FILE} is missing): refusing to load it")
    with _key_file(verify_pem()) as key, _private_copy(files) as copy:
        try:
            config = verifying.Config()  # type: ignore[no-untyped-call]
            config.use_elliptic_key_verifier(public_key=key).set_hashing_config(_hashing()).verify(
                copy, copy / SIGNATURE_FILE
            )
        except Exception as exc:  # noqa: BLE001 - whatever model-signing refuses, we refuse in one line
            raise IntegrityError(f"{shown_as} fails its signature check ({_explain(str(exc))}): refusing it") from exc
    return {name: data for name, data in files.items() if name != SIGNATURE_FILE}


def verify_model_dir(path: PathLike) -> dict[str, bytes]:
    """Read the directory once and verify it (:func:`verify_files`); return its signed files."""
    return verify_files(read_flat_dir(path), Path(path))


def _public_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise IntegrityError(f"the verification key is not a PEM public key: {exc}") from exc


def key_id(public_pem: bytes | None = None) -> str:
    """A short name of the verification key (sha256 of its DER form, 16 hex digits): records say
    which key signed them, so "another key" is told apart from "tampered"."""
    import hashlib

    from cryptography.hazmat.primitives import serialization

    der = _public_key(public_pem or verify_pem()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def sign_bytes(data: bytes, what: str) -> bytes:
    """An ECDSA P-256 / SHA-256 signature (DER) of ``data`` with the signing key: records that
    are not directories (the registry's events) are signed with the same key as model versions."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = _signing_pem()
    if pem is None:
        raise IntegrityError(_MSG_NO_KEY.format(env=SIGNING_KEY_ENV, env_file=SIGNING_KEY_FILE_ENV, dir=_keys_dir()))
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IntegrityError(f"cannot sign {what}: the signing key is not an elliptic-curve key")
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify_bytes(data: bytes, signature: bytes, what: str, public_pem: bytes | None = None) -> None:
    """Check :func:`sign_bytes`'s signature with the verification key.

    Raises
    ------
    IntegrityError
        The signature does not match ``data`` under this key (changed, or signed by another key).
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = _public_key(public_pem or verify_pem())
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise IntegrityError("the verification key is not an elliptic-curve key")
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise IntegrityError(f"{what} fails its signature check: it was changed, or signed by another key") from exc
