"""The registry's history of one model: an append-only log of signed, chained events.

Layout: ``<registry>/<name>/events/00000001.event``, ``00000002.event``, ... one file per event.
A file holds two lines: the event as canonical JSON (keys sorted, no spaces, ASCII) and its
ECDSA P-256 signature (base64, low s) over exactly those bytes. A person's decision (approve,
reject, promote, roll back, archive) is signed with the decision key, which only the people who
decide hold; a registration with the model signing key the pipeline's tasks hold; so no pipeline
can approve or promote (:mod:`kfp_rai.core.signing`). Each event names its sequence
number and the sha256 of the previous event's file, so a log is refused with one line when an
event was edited (signature), removed (a gap, or a broken link), reordered (sequence or link),
added by someone without the key (signature), or written so that its parse is not its bytes
(duplicate keys, other spacing: the stored line must be the canonical form of what it says).

Appending is exclusive: the writer names the sequence number it expects to take and loses if
another writer took it first (:class:`LostRace`), then re-reads the log and decides again.

- On a local disk the event is written to a hidden temporary file and published with
  ``link(2)``, which fails when the name exists: exactly one writer wins, and a reader never
  sees a half-written event.
- On an object store pyarrow offers no conditional write (no ``If-None-Match``), so the writer
  first holds the name alone through a claim (:mod:`._claim`: put a claim, list the claims),
  then checks the name is free, writes, and reads the object back.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import getpass
import json
import os
import re
import socket
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from kfp_rai._version import __version__
from kfp_rai.core.files import sha256_bytes
from kfp_rai.core.signing import DECISION_KEYS, MODEL_KEYS, KeyPair, key_id, sign_bytes, verify_bytes, verify_pem
from kfp_rai.errors import IntegrityError, InvalidParameterError
from kfp_rai.production._claim import EVENT_LEASE_SECONDS, Contended, holding

EVENTS_DIR = "events"
EVENT_TYPES = ("registered", "approved", "rejected", "promoted", "rolled_back", "archived", "deployed")
# A person's decisions are signed with the decision key, which no pipeline holds; registrations with
# the model signing key the pipeline's tasks hold; a deployment record with whichever its writer has.
DECISIONS = ("approved", "rejected", "promoted", "rolled_back", "archived")
MAX_EVENT_BYTES = 64 << 10  # an event is a few hundred bytes; a larger file is not one
MAX_NOTE_CHARS = 2000
_FILE = re.compile(r"^(\d{8})\.event$")


class LostRace(Exception):
    """Another writer took the sequence number first: re-read the log and decide again."""


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"the key {next(k for k in keys if keys.count(k) > 1)!r} appears twice")
    return dict(pairs)


def actor() -> dict[str, str]:
    """Where a command ran (the operating-system user and host), recorded beside the ``by`` a
    person gives: ``by`` is asserted, this is what the machine said."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return {"os_user": user, "host": socket.gethostname()}


@dataclass(frozen=True)
class Event:
    """One signed entry of a model's history (see the module docstring for the format)."""

    seq: int
    prev: str
    type: str
    model: str
    version: str
    model_sha256: str
    by: str
    time: str
    note: str = ""
    evidence: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    actor: Mapping[str, str] = field(default_factory=dict)
    key_id: str = ""
    kfp_rai_version: str = __version__
    digest: str = ""  # sha256 of the stored file; not part of the signed body

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "prev": self.prev,
            "type": self.type,
            "model": self.model,
            "version": self.version,
            "model_sha256": self.model_sha256,
            "by": self.by,
            "time": self.time,
            "note": self.note,
            "evidence": dict(self.evidence),
            "details": dict(self.details),
            "actor": dict(self.actor),
            "key_id": self.key_id,
            "kfp_rai_version": self.kfp_rai_version,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "digest": self.digest}


def signer(event_type: str, *, person: bool) -> KeyPair:
    """The key pair that signs (and must verify) an event: decisions the decision key, registrations
    the model key, a deployment the decision key when a person recorded it."""
    if event_type in DECISIONS or (event_type == "deployed" and person):
        return DECISION_KEYS
    return MODEL_KEYS


def encode_event(event: Event, pair: KeyPair) -> bytes:
    """The event's file: canonical JSON, newline, base64 signature, newline."""
    line = _canonical(event.body())
    signature = base64.b64encode(sign_bytes(line, f"event {event.seq} of {event.model}", pair))
    return line + b"\n" + signature + b"\n"


class _Keys:
    """The two public keys a log verifies with, each read once and only when needed."""

    def __init__(self, model_pem: bytes | None = None) -> None:
        self._pems: dict[str, bytes] = {} if model_pem is None else {MODEL_KEYS.what: model_pem}
        self._ids: dict[str, str] = {}

    def pem(self, pair: KeyPair) -> bytes:
        if pair.what not in self._pems:
            self._pems[pair.what] = verify_pem(pair)
        return self._pems[pair.what]

    def id(self, pair: KeyPair) -> str:
        if pair.what not in self._ids:
            self._ids[pair.what] = key_id(self.pem(pair))
        return self._ids[pair.what]

    def for_event(self, event_type: str, stated_key: str) -> KeyPair:
        if event_type in DECISIONS:
            return DECISION_KEYS
        if event_type == "deployed" and stated_key != self.id(MODEL_KEYS):
            return DECISION_KEYS
        return MODEL_KEYS


def decode_event(data: bytes, where: str, keys: _Keys | None = None) -> Event:
    """Verify one event file's signature over its exact first line (with the key its type must be
    signed with), then read it.

    Raises
    ------
    IntegrityError
        Not two lines, a bad signature, a parse that is not the stored bytes, or not an event.
    """
    parts = data.split(b"\n")
    if len(data) > MAX_EVENT_BYTES or len(parts) != 3 or parts[2] != b"":
        raise IntegrityError(f"{where} is not an event file (two lines: the event and its signature)")
    line, signature = parts[0], parts[1]
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        stated = json.loads(line.decode("ascii"), object_pairs_hook=_no_duplicates)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{where} is not readable: {exc}") from exc
    if not isinstance(stated, dict):
        raise IntegrityError(f"{where} is not an event")
    keys = keys or _Keys()
    pair = keys.for_event(str(stated.get("type")), str(stated.get("key_id")))
    verify_bytes(line, raw_signature, where, keys.pem(pair), pair=pair)
    body = stated
    if not isinstance(body, dict) or _canonical(body) != line:
        raise IntegrityError(f"{where} is signed but its bytes are not the canonical form of what it says")
    try:
        event = Event(**body, digest=sha256_bytes(data))
    except TypeError as exc:
        raise IntegrityError(f"{where} is signed but is not an event: {exc}") from exc
    if event.type not in EVENT_TYPES or not isinstance(event.seq, int):
        raise IntegrityError(f"{where} is signed but names no known event type ({event.type!r})")
    return event


@dataclass(frozen=True)
class Entry:
    """One entry of a directory listing."""

    name: str
    path: str
    is_dir: bool
    is_file: bool


def list_dir(fs: pafs.FileSystem, directory: str) -> list[Entry]:
    """The entries of ``directory``, none when it does not exist. On a local disk read with scandir:
    pyarrow's listing (``allow_not_found``) raises when another writer creates the directory while
    it is read (the first registrations of a model at once), and an entry removed meanwhile is
    simply left out."""
    if isinstance(fs, pafs.LocalFileSystem):
        try:
            with os.scandir(directory) as found:
                return [Entry(e.name, f"{directory}/{e.name}", e.is_dir(), e.is_file()) for e in found]
        except FileNotFoundError:
            return []
    return [
        Entry(i.base_name, i.path, i.type == pafs.FileType.Directory, i.type == pafs.FileType.File)
        for i in fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    ]


class EventLog:
    """The event log of one model in a registry on a pyarrow filesystem (see the module docstring)."""

    def __init__(self, fs: pafs.FileSystem, model_dir: str, name: str, shown_as: str) -> None:
        self._fs = fs
        self._dir = f"{model_dir.rstrip('/')}/{EVENTS_DIR}"
        self._local = isinstance(fs, pafs.LocalFileSystem)
        self.name = name
        self.shown_as = shown_as

    def exists(self) -> bool:
        """Whether the model has a log (a registry lays one out per model)."""
        return bool(self._fs.get_file_info(self._dir).type == pafs.FileType.Directory)

    def _path(self, seq: int) -> str:
        return f"{self._dir}/{seq:08d}.event"

    def raw(self, event: Event) -> bytes:
        """The stored bytes of ``event`` (checked against its digest): the signed form that can be
        handed to a server which cannot read the registry."""
        data = self._read_file(self._path(event.seq))
        if sha256_bytes(data) != event.digest:
            raise IntegrityError(f"event {event.seq} of {self.shown_as} changed since it was read: refusing it")
        return data

    def _read_file(self, path: str) -> bytes:
        with self._fs.open_input_stream(path) as fh:
            return bytes(fh.read(MAX_EVENT_BYTES + 1))

    def read(self, public_pem: bytes | None = None) -> tuple[Event, ...]:
        """Every event, oldest first, each verified and linked to the one before.

        Raises
        ------
        IntegrityError
            With one line naming the first event that is changed, missing, out of order or
            foreign, and the log it belongs to.
        """
        numbered: dict[int, str] = {}
        for info in list_dir(self._fs, self._dir):
            if info.name.startswith("."):  # a writer's temporary file (local disks), a claim (object stores)
                continue
            match = _FILE.match(info.name)
            if not match or not info.is_file:
                raise IntegrityError(
                    f"the event log of {self.shown_as} holds {info.name!r}, which is not an event: refusing it"
                )
            numbered[int(match.group(1))] = info.path
        events: list[Event] = []
        prev = ""
        keys = _Keys(public_pem)
        for expected, seq in enumerate(sorted(numbered), start=1):
            if seq != expected:
                raise IntegrityError(
                    f"event {expected} of {self.shown_as} is missing (the log jumps to {seq}): the history was "
                    "cut; refusing it"
                )
            where = f"event {seq} of {self.shown_as}"
            event = decode_event(self._read_file(numbered[seq]), where, keys)
            if event.seq != seq or event.model != self.name:
                raise IntegrityError(
                    f"{where} is signed as event {event.seq} of {event.model!r}: events were moved or reordered"
                )
            if event.prev != prev:
                raise IntegrityError(
                    f"{where} does not follow event {seq - 1} (its link names another predecessor): the history "
                    "was edited or reordered; refusing it"
                )
            events.append(event)
            prev = event.digest
        return tuple(events)

    def draft(
        self,
        after: tuple[Event, ...],
        *,
        type: str,  # noqa: A002 - the event's own field name
        version: str,
        model_sha256: str,
        by: str,
        time: str,
        note: str = "",
        evidence: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
        person: bool = True,
    ) -> Event:
        """The next event after ``after`` (the log as the writer read it), not yet written;
        ``person``: a person records it (a deployment), not a pipeline."""
        if type not in EVENT_TYPES:
            raise InvalidParameterError(f"unknown event type {type!r}")
        for flag, text in (("--by", by), ("--note", note)):
            if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
                raise InvalidParameterError(
                    f"{flag} holds control or invisible characters (a line break, a zero-width space, ...): write it "
                    "on one line in plain characters"
                )
        if not by.strip():
            raise InvalidParameterError("every decision names who took it: --by WHO")
        if len(note) > MAX_NOTE_CHARS or len(by) > 200:
            raise InvalidParameterError(f"--note is limited to {MAX_NOTE_CHARS} characters and --by to 200")
        return Event(
            seq=len(after) + 1,
            prev=after[-1].digest if after else "",
            type=type,
            model=self.name,
            version=version,
            model_sha256=model_sha256,
            by=by.strip(),
            time=time,
            note=note.strip(),
            evidence=dict(evidence or {}),
            details=dict(details or {}),
            actor=actor(),
            key_id=key_id(pair=signer(type, person=person)),
        )

    def append(self, event: Event, *, person: bool = True) -> Event:
        """Write ``event`` as the log's next entry, or raise :class:`LostRace` when its number was
        taken since the writer read the log."""
        data = encode_event(event, signer(event.type, person=person))
        target = self._path(event.seq)
        if self._local:
            self._publish_local(target, data)
        else:
            self._publish_remote(target, data)
        return Event(**event.body(), digest=sha256_bytes(data))

    def _publish_local(self, target: str, data: bytes) -> None:
        directory = Path(self._dir)
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            try:
                os.link(tmp, target)  # fails if the name exists: one writer wins
            except FileExistsError as exc:
                raise LostRace(target) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _publish_remote(self, target: str, data: bytes) -> None:
        try:
            with holding(self._fs, self._dir, target.rsplit("/", 1)[1], lease=EVENT_LEASE_SECONDS):
                if self._fs.get_file_info(target).type != pafs.FileType.NotFound:
                    raise LostRace(target)
                with self._fs.open_output_stream(target) as out:
                    out.write(data)
        except Contended as exc:
            raise LostRace(target) from exc
        if self._read_file(target) != data:  # a writer that does not claim (not kfp-rai) overwrote it
            raise LostRace(target)
