"""One writer at a time for a name on an object store, through nothing but pyarrow's put, list, delete.

Arrow's S3 and GCS file systems expose no conditional write (S3's ``If-None-Match``), so a writer
that checks a name is free and then writes it can be overtaken by another doing the same. Before
writing ``<dir>/<name>`` a writer therefore puts a claim ``<dir>/.<name>.claim-<random>`` and lists
the claims on that name: alone, it holds the name until it deletes its claim; not alone, it deletes
its claim, waits a random while and tries again.

Why at most one writer holds a name: each writer puts its claim *before* it lists. For A and B to
both see only their own claim, A's list must precede B's put and B's list precede A's put, but each
put precedes its own list: a cycle. This needs a store whose listing shows every object whose put
has returned (read-after-write consistent listing: Amazon S3 since December 2020, Google Cloud
Storage, MinIO; SeaweedFS with one filer or a shared filer store). A holder checks the name is
still free *after* it holds it, then writes.

A claim is taken back however its holder leaves (an error, an interrupt); one whose writer was
killed is ignored once it is its lease older than the newest claim (the store's own clock on both
sides, so no clock skew enters): :data:`EVENT_LEASE_SECONDS` for an event (one small put),
:data:`LEASE_SECONDS` for a version (a model's upload). Until then, writers of that name are told
which claim holds them off and until when. A holder stalled past its lease (a machine suspended
between its check and its write) is the one case this does not cover: another writer may then
take the name, and the stalled one overwrite it. A store that lists objects without their times
never lets a dead writer's claim expire: remove it by hand. An expired claim is removed by the
next writer of its name that sees it.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pyarrow.fs as pafs

LEASE_SECONDS = 600
EVENT_LEASE_SECONDS = 60
ATTEMPTS = 12
_WAIT = (0.02, 0.25)  # seconds, doubled per attempt up to 2 s


class Contended(Exception):
    """Other writers kept claiming the name; nothing was written. The message names the claim that
    held the last attempt off and when it expires, if its writer is gone."""


def claim_prefix(name: str) -> str:
    """The file-name prefix of every claim on ``name`` (hidden: starts with a dot)."""
    return f".{name}.claim-"


@contextlib.contextmanager
def holding(fs: pafs.FileSystem, directory: str, name: str, *, lease: float = LEASE_SECONDS) -> Iterator[None]:
    """Hold ``directory/name`` alone among the writers that claim it here, for the ``with`` body.

    Raises
    ------
    Contended
        When another writer's claim was present on every one of :data:`ATTEMPTS` tries.
    """
    fs.create_dir(directory, recursive=True)
    prefix = claim_prefix(name)
    mine = f"{prefix}{uuid.uuid4().hex}"
    path = f"{directory}/{mine}"
    blocker = ""
    for attempt in range(ATTEMPTS):
        try:
            with fs.open_output_stream(path) as out:
                out.write(b"")
            blocker = _blocker(fs, directory, prefix, mine, timedelta(seconds=lease))
        except BaseException:  # an error or an interrupt between the put and the verdict: take it back
            with contextlib.suppress(OSError):
                fs.delete_file(path)
            raise
        if not blocker:
            try:
                yield
            finally:
                fs.delete_file(path)
            return
        fs.delete_file(path)
        if attempt + 1 < ATTEMPTS:
            time.sleep(random.uniform(*_WAIT) * min(2**attempt, 8))  # noqa: S311  # nosec B311  # jitter, no secret
    raise Contended(f"{directory}/{name} is claimed by {blocker}")


def _blocker(fs: pafs.FileSystem, directory: str, prefix: str, mine: str, lease: timedelta) -> str:
    """The live claim of another writer on the name (how it reads in a message), or "" if ours is alone."""
    claims = [i for i in fs.get_file_info(pafs.FileSelector(directory)) if i.base_name.startswith(prefix)]
    if not any(i.base_name == mine for i in claims):  # a listing that misses our own put: trust nothing
        return f"nobody this store lists: its listing missed this writer's own claim {mine}"
    times = [i.mtime for i in claims if i.mtime is not None]
    newest: datetime | None = max(times) if times else None
    for i in claims:
        if i.base_name == mine:
            continue
        if i.mtime is None or newest is None:
            return f"{i.base_name} (its store gives no time: if no writer runs, delete it)"
        if newest - i.mtime < lease:
            expires = (i.mtime + lease).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
            return f"{i.base_name}, another writer (ignored from {expires} if that writer is gone)"
        with contextlib.suppress(OSError):  # past its lease: its writer is gone, nobody needs it any more
            fs.delete_file(f"{directory}/{i.base_name}")
    return ""
