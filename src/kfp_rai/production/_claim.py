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
Storage, MinIO, SeaweedFS). A holder checks the name is still free *after* it holds it, then writes.

A claim whose writer died is ignored once it is :data:`LEASE_SECONDS` older than the newest claim
(the store's own clock on both sides, so no clock skew enters); a write that outlives the lease is
the one case this does not cover, and the registry reads every file back after writing it.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pyarrow.fs as pafs

LEASE_SECONDS = 600
ATTEMPTS = 12
_WAIT = (0.02, 0.25)  # seconds, doubled per attempt up to 2 s


class Contended(Exception):
    """Other writers kept claiming the name; nothing was written."""


def claim_prefix(name: str) -> str:
    """The file-name prefix of every claim on ``name`` (hidden: starts with a dot)."""
    return f".{name}.claim-"


@contextlib.contextmanager
def holding(fs: pafs.FileSystem, directory: str, name: str) -> Iterator[None]:
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
    for attempt in range(ATTEMPTS):
        with fs.open_output_stream(path) as out:
            out.write(b"")
        if _alone(fs, directory, prefix, mine):
            try:
                yield
            finally:
                fs.delete_file(path)
            return
        fs.delete_file(path)
        time.sleep(random.uniform(*_WAIT) * min(2**attempt, 8))  # noqa: S311 - jitter, not a secret
    raise Contended(f"{directory}/{name}")


def _alone(fs: pafs.FileSystem, directory: str, prefix: str, mine: str) -> bool:
    claims = [i for i in fs.get_file_info(pafs.FileSelector(directory)) if i.base_name.startswith(prefix)]
    if not any(i.base_name == mine for i in claims):  # a listing that misses our own put: trust nothing
        return False
    times = [i.mtime for i in claims if i.mtime is not None]
    newest = max(times) if times else None
    lease = timedelta(seconds=LEASE_SECONDS)
    live = [
        i for i in claims if i.base_name != mine and (newest is None or i.mtime is None or newest - i.mtime < lease)
    ]
    return not live
