"""The registry's history of one model: an append-only log of signed, chained events.

Layout: ``<registry>/<name>/events/00000001.event``, ``00000002.event``, ... one file per event.
A file holds two lines: the event as canonical JSON (keys sorted, no spaces, ASCII) and its
ECDSA P-256 signature (base64) over exactly those bytes, made with the registry's signing key
(the key that signs model versions, :mod:`kfp_rai.core.signing`). Each event names its sequence
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
  checks that the name is free, writes, and reads the object back: a writer that was
  overwritten learns it and retries. Two writers within the same round trip can still both
  believe they won; the later write survives and the earlier event is lost, never corrupted
  (every surviving event is signed and chained). Governance is a person's act, so run it
  against an object-store registry from one place at a time (docs/governance.md).
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from kfp_rai._version import __version__
from kfp_rai.core.files import sha256_bytes
from kfp_rai.core.signing import key_id, sign_bytes, verify_bytes, verify_pem
from kfp_rai.errors import IntegrityError, InvalidParameterError

EVENTS_DIR = "events"
EVENT_TYPES = ("registered", "approved", "rejected", "promoted", "rolled_back", "archived", "deployed")
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


def encode_event(event: Event) -> bytes:
    """The event's file: canonical JSON, newline, base64 signature, newline."""
    line = _canonical(event.body())
    signature = base64.b64encode(sign_bytes(line, f"event {event.seq} of {event.model}"))
    return line + b"\n" + signature + b"\n"


def decode_event(data: bytes, where: str, public_pem: bytes | None = None) -> Event:
    """Verify one event file's signature over its exact first line, then read it.

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
    except binascii.Error as exc:
        raise IntegrityError(f"{where} carries no readable signature") from exc
    verify_bytes(line, raw_signature, where, public_pem)
    try:
        body = json.loads(line.decode("ascii"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{where} is signed but not readable: {exc}") from exc
    if not isinstance(body, dict) or _canonical(body) != line:
        raise IntegrityError(f"{where} is signed but its bytes are not the canonical form of what it says")
    try:
        event = Event(**body, digest=sha256_bytes(data))
    except TypeError as exc:
        raise IntegrityError(f"{where} is signed but is not an event: {exc}") from exc
    if event.type not in EVENT_TYPES or not isinstance(event.seq, int):
        raise IntegrityError(f"{where} is signed but names no known event type ({event.type!r})")
    return event


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
        infos = self._fs.get_file_info(pafs.FileSelector(self._dir, allow_not_found=True))
        numbered: dict[int, str] = {}
        for info in infos:
            if info.base_name.startswith("."):  # a writer's temporary file (local disks)
                continue
            match = _FILE.match(info.base_name)
            if not match or info.type != pafs.FileType.File:
                raise IntegrityError(
                    f"the event log of {self.shown_as} holds {info.base_name!r}, which is not an event: refusing it"
                )
            numbered[int(match.group(1))] = info.path
        events: list[Event] = []
        prev = ""
        public_pem = public_pem or verify_pem()
        for expected, seq in enumerate(sorted(numbered), start=1):
            if seq != expected:
                raise IntegrityError(
                    f"event {expected} of {self.shown_as} is missing (the log jumps to {seq}): the history was "
                    "cut; refusing it"
                )
            where = f"event {seq} of {self.shown_as}"
            event = decode_event(self._read_file(numbered[seq]), where, public_pem)
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
    ) -> Event:
        """The next event after ``after`` (the log as the writer read it), not yet written."""
        if type not in EVENT_TYPES:
            raise InvalidParameterError(f"unknown event type {type!r}")
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
            key_id=key_id(),
        )

    def append(self, event: Event) -> Event:
        """Write ``event`` as the log's next entry, or raise :class:`LostRace` when its number was
        taken since the writer read the log."""
        data = encode_event(event)
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
        self._fs.create_dir(self._dir, recursive=True)
        if self._fs.get_file_info(target).type != pafs.FileType.NotFound:
            raise LostRace(target)
        with self._fs.open_output_stream(target) as out:
            out.write(data)
        if self._read_file(target) != data:  # overwritten by another writer since the check
            raise LostRace(target)
