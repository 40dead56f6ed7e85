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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_rai.core.files import PathLike, atomic_write_bytes, read_key_file
from kfp_rai.errors import IntegrityError

SIGNATURE_FILE = "model.sig"
SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV = "KFP_RAI_SIGNING_KEY", "KFP_RAI_SIGNING_KEY_FILE"
VERIFY_KEY_ENV, VERIFY_KEY_FILE_ENV = "KFP_RAI_VERIFY_KEY", "KFP_RAI_VERIFY_KEY_FILE"
_MSG_NO_KEY = (
    "no {what}: set {env} (PEM text) or {env_file}; locally `kfp-rai run` creates a key pair in {dir} on "
    "first use; in a cluster {cluster}"
)


@dataclass(frozen=True)
class KeyPair:
    """Where one key pair comes from: environment variables (PEM text or a file) or the local default."""

    what: str  # how messages name the private key
    private_env: str
    private_file_env: str
    public_env: str
    public_file_env: str
    private_name: str
    public_name: str
    cluster: str  # where it lives in a cluster, for messages


# Signs model directories and the registrations pipelines record: held by the training and registration tasks.
MODEL_KEYS = KeyPair(
    "signing key", SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV, VERIFY_KEY_ENV, VERIFY_KEY_FILE_ENV,
    "signing-key.pem", "verify-key.pem",
    "create the Secret kfp-rai-signing (see manifests/base/kustomization.yaml)",
)  # fmt: skip
# Signs people's decisions in the registry (approve, reject, promote, roll back, archive): held by the
# people who decide, never by a pipeline, so a run cannot approve or promote anything; the public half
# verifies them everywhere (pipeline tasks, the serving pod).
DECISION_KEYS = KeyPair(
    "decision key", "KFP_RAI_DECISION_KEY", "KFP_RAI_DECISION_KEY_FILE", "KFP_RAI_DECISION_VERIFY_KEY",
    "KFP_RAI_DECISION_VERIFY_KEY_FILE", "decision-key.pem", "decision-verify-key.pem",
    "give it to the people who approve (never to a pipeline's namespace; scripts/kind-up.sh keeps it in your "
    "config dir) and the public half to the Secrets kfp-rai-signing and kfp-rai-verify-key",
)  # fmt: skip


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


def _public_of(pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _ensure_pair(keys: Path, pair: KeyPair) -> bool:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private, public = keys / pair.private_name, keys / pair.public_name
    if private.exists():
        pem = _private_file(private, f"the {pair.what}")
        if not public.exists():  # the public half can always be derived again
            public.write_bytes(_public_of(pem))
        return False
    if public.exists():
        raise IntegrityError(
            f"{public} exists without its {pair.what} {private}: restore the {pair.what} (what it signed verifies "
            f"only with this pair), or move {keys} aside to start a new pair"
        )
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys, 0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public.write_bytes(_public_of(pem))
    return True


def ensure_local_keys() -> tuple[Path, bool]:
    """The local key pairs' directory (the model signing pair and the decision pair), creating a
    pair that does not exist yet. Returns the directory and whether a pair was created now."""
    keys = _keys_dir()
    created = [_ensure_pair(keys, pair) for pair in (MODEL_KEYS, DECISION_KEYS)]
    return keys, any(created)


def private_pem(pair: KeyPair = MODEL_KEYS) -> bytes | None:
    """A pair's private key (see the module docstring for where it comes from), or None."""
    if text := os.environ.get(pair.private_env):
        return text.encode("utf-8")
    if path := os.environ.get(pair.private_file_env):
        return _private_file(Path(path), f"{pair.private_file_env}=")
    default = _keys_dir() / pair.private_name
    return _private_file(default, f"the {pair.what}") if default.exists() else None


def _signing_pem() -> bytes | None:
    return private_pem(MODEL_KEYS)


def verify_pem(pair: KeyPair = MODEL_KEYS) -> bytes:
    """The public key that verifies a pair's signatures (see the module docstring)."""
    if text := os.environ.get(pair.public_env):
        return text.encode("utf-8")
    if path := os.environ.get(pair.public_file_env):
        return read_key_file(path, f"{pair.public_file_env}=", private=False)
    if private := private_pem(pair):
        return _public_of(private)
    default = _keys_dir() / pair.public_name
    if default.is_file():
        return read_key_file(default, f"the {pair.what}'s public half", private=False)
    raise IntegrityError(
        f"no public half of the {pair.what}: set {pair.public_env} (PEM text) or {pair.public_file_env}; locally "
        f"the pair is in {_keys_dir()}"
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
        raise IntegrityError(_no_key(MODEL_KEYS))
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


def _no_key(pair: KeyPair) -> str:
    return _MSG_NO_KEY.format(
        what=pair.what, env=pair.private_env, env_file=pair.private_file_env, dir=_keys_dir(), cluster=pair.cluster
    )


def _public_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise IntegrityError(f"the verification key is not a PEM public key: {exc}") from exc


# The order of P-256's group: a signature (r, s) is as valid as (r, n - s), so only the low s is accepted
# and made (as Bitcoin's BIP 62 does): a signed record then has one byte form, and one digest.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def key_id(public_pem: bytes | None = None, pair: KeyPair = MODEL_KEYS) -> str:
    """A short name of a verification key (sha256 of its DER form, 16 hex digits): records say
    which key signed them, so "another key" is told apart from "tampered"."""
    import hashlib

    from cryptography.hazmat.primitives import serialization

    der = _public_key(public_pem or verify_pem(pair)).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def sign_bytes(data: bytes, what: str, pair: KeyPair = MODEL_KEYS) -> bytes:
    """An ECDSA P-256 / SHA-256 signature (DER, low s) of ``data`` with a pair's private key:
    records that are not directories (the registry's events) are signed byte for byte."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    pem = private_pem(pair)
    if pem is None:
        raise IntegrityError(f"cannot sign {what}: " + _no_key(pair))
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IntegrityError(f"cannot sign {what}: the {pair.what} is not an elliptic-curve key")
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return encode_dss_signature(r, min(s, _P256_ORDER - s))


def verify_bytes(data: bytes, signature: bytes, what: str, public_pem: bytes | None = None, *,
                 pair: KeyPair = MODEL_KEYS) -> None:  # fmt: skip
    """Check :func:`sign_bytes`'s signature with a pair's public key (or ``public_pem``).

    Raises
    ------
    IntegrityError
        The signature does not match ``data`` under this key (changed, or signed by another key),
        or is not in its one canonical form (DER, low s).
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    key = _public_key(public_pem or verify_pem(pair))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise IntegrityError(f"the {pair.what}'s public half is not an elliptic-curve key")
    try:
        r, s = decode_dss_signature(signature)
    except ValueError as exc:
        raise IntegrityError(f"{what} carries no readable signature") from exc
    if s > _P256_ORDER // 2 or encode_dss_signature(r, s) != signature:
        raise IntegrityError(f"{what} carries a signature in another form than the one kfp-rai writes: refusing it")
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise IntegrityError(
            f"{what} fails its signature check: it was changed, or not signed with the {pair.what}"
        ) from exc
