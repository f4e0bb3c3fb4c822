"""Uploads are read in a child process: off the event loop, within a memory bound and a
deadline.

A hostile file must cost its upload a refusal, not the service its memory or its event
loop. ``files.py`` refuses what the ZIP directory shows is unsafe and bounds what it
reads; what is left (a valid file that is merely huge, a parser path nobody foresaw)
runs here, in one child process per service process:

- spawned on first use: a fresh interpreter, with none of the service's memory,
  sockets or threads; its address space is limited (``RLIMIT_AS``), so a file that
  needs more fails there with ``MemoryError`` (or kills it) and the service never grows;
- one upload at a time (uploads queue on a lock; each holds the child for at most the
  deadline), and nothing of the upload's work holds the service's GIL;
- a deadline per upload: past it, the child is killed;
- a child that died, ran out of memory or was killed is replaced on the next upload,
  and the upload gets ``FileTooDemanding`` (422) naming what happened;
- a child that kept more than ``recycle_rss`` after an upload is replaced too, so one
  big file does not hold its memory until the next.

What it costs: the first upload after a start waits for the child (about half a
second: an interpreter and the parsing modules); each upload then pays the copy of
its bytes there and of its rows back (pickled), a few milliseconds per thousand rows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import resource
import signal
import uuid
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from ..errors import FileTooDemanding, NoRows
from .files import read_table
from .rules import PlannedRow, map_columns, plan_rows, storable

MB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """A file read and every row validated: what ``Imports.start`` stores.

    ``records`` are the rows as ``store.copy_rows`` writes them (``store.ROW_COLUMNS``
    order), built here rather than in the service: plain tuples cross from the child
    quicker than objects, and the service's event loop has nothing left to build.
    """

    file_type: str
    headers: list[str]
    columns: dict[str, Any]
    records: list[tuple[Any, ...]]


def record(import_id: uuid.UUID, row: PlannedRow) -> tuple[Any, ...]:
    """A planned row in ``store.ROW_COLUMNS`` order."""
    return (
        import_id,
        row.line,
        list(row.cells),
        row.name,
        row.email,
        row.email_normalised,
        row.role,
        row.employee_id,
        list(row.groups),
        "pending" if row.outcome is None else "done",
        row.outcome,
        row.reason,
    )


def plan_upload(data: bytes, max_rows: int, import_id: uuid.UUID) -> Plan:
    """Read the file and validate every row (``FileRefused`` for a file that cannot be
    imported). Pure: runs in the child, or anywhere for tests."""
    table = read_table(data, max_rows=max_rows)
    columns = map_columns(table.headers)
    planned = plan_rows(table.rows, columns)
    if not planned:
        raise NoRows()
    headers = [storable(h) for h in table.headers]
    described = {
        "fields": columns.header_of(headers),
        "ignored": [storable(h) for h in columns.ignored],
    }
    return Plan(table.file_type, headers, described, [record(import_id, p) for p in planned])


# -- in the child -------------------------------------------------------------------------


def _start_child(memory_bytes: int) -> None:
    """The child's initializer: its memory bound, and the modules it will need."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # Should the container's memory run out all the same, the kernel kills this
    # process first: the upload fails, not the service (raising it needs no privilege).
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as adj:
        adj.write("1000")
    # Loaded now, not on the first file: the deadline is for reading, not importing.
    import openpyxl.reader.excel  # noqa: F401


def _pid() -> int:
    return os.getpid()


def _run(data: bytes, max_rows: int, import_id: uuid.UUID) -> tuple[Plan, int]:
    """``plan_upload``, and how much memory the child holds afterwards (bytes)."""
    plan = plan_upload(data, max_rows, import_id)
    return plan, _resident()


def _resident() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: never recycled for its size
        return 0


# -- in the service -----------------------------------------------------------------------


class UploadReader:
    """Reads uploads in a memory-bounded child process (see the module's doc)."""

    def __init__(self, *, memory_bytes: int, timeout_s: float, recycle_rss: int = 256 * MB) -> None:
        self.memory_bytes = memory_bytes
        self.timeout_s = timeout_s
        self.recycle_rss = recycle_rss
        self._turn = asyncio.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._child: int | None = None

    async def plan(self, data: bytes, max_rows: int, import_id: uuid.UUID) -> Plan:
        """``plan_upload`` in the child; ``FileTooDemanding`` when the child could not."""
        async with self._turn:
            pool = await self._ready()
            try:
                plan, resident = await asyncio.wait_for(
                    asyncio.wrap_future(pool.submit(_run, data, max_rows, import_id)),
                    self.timeout_s,
                )
            except TimeoutError:
                self._stop(kill=True)
                raise FileTooDemanding(
                    f"Reading the file took longer than {self.timeout_s:g} s, the most an "
                    "upload may take; split it into smaller files.",
                    f"took longer than {self.timeout_s:g} s to read",
                ) from None
            except MemoryError:
                self._stop(kill=True)
                raise self._too_big() from None
            except BrokenProcessPool:
                # Killed by the memory bound (or anything else): the next upload gets
                # a new child.
                self._stop(kill=True)
                raise self._too_big() from None
            if resident > self.recycle_rss:
                self._stop(kill=False)
            return plan

    def _too_big(self) -> FileTooDemanding:
        limit = self.memory_bytes // MB
        return FileTooDemanding(
            f"Reading the file needed more than {limit:,} MB of memory, the most an upload "
            "may use; split it into smaller files.",
            f"needs more than {limit:,} MB to read",
        )

    async def _ready(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child,
                initargs=(self.memory_bytes,),
            )
            try:
                self._child = await asyncio.wait_for(
                    asyncio.wrap_future(pool.submit(_pid)), max(self.timeout_s, 30.0)
                )
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            self._pool = pool
        return self._pool

    def _stop(self, *, kill: bool) -> None:
        pool, child = self._pool, self._child
        self._pool = self._child = None
        if pool is None:
            return
        if kill and child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the child (at the service's shutdown)."""
        self._stop(kill=True)
