"""The upload reader: a child process with a memory bound and a deadline; what it
refuses comes back as the service's own errors, and a child that fails is replaced."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psutil
import pytest

from prodigy_users.membership.errors import PROBLEMS, FileTooDemanding, UnsafeFile
from prodigy_users.membership.imports.parsing import MB, UploadReader
from prodigy_users.runtime.problems import problem_of
from tests import hostile_files

HONEST = hostile_files.workbook(hostile_files.people(3000, "reader"))


async def test_the_child_reads_and_its_refusals_come_back_as_they_are() -> None:
    reader = UploadReader(memory_bytes=512 * MB, timeout_s=120)
    try:
        plan = await reader.plan(HONEST, 50_000, uuid.uuid4())
        assert (plan.file_type, len(plan.records)) == ("xlsx", 3000)
        assert plan.columns == {"fields": {"name": "Name", "email": "Email"}, "ignored": []}
        with pytest.raises(UnsafeFile) as refused:
            await reader.plan(hostile_files.entity_expansion(), 50_000, uuid.uuid4())
        problem = problem_of(refused.value, PROBLEMS)
        assert (problem.status, problem.slug) == (422, "unsafe-file")
        assert problem.errors == [{"field": "file", "message": "XML entities are not allowed"}]
        # The child is the service's, not a copy of it: another process, still there.
        child = reader._child
        assert child is not None and child != os.getpid()
        assert psutil.Process(child).ppid() == os.getpid()
        adj = Path(f"/proc/{child}/oom_score_adj").read_text().strip()
        assert adj == "1000", "killed first if the container runs out"
    finally:
        reader.close()


async def test_past_the_deadline_the_child_is_killed_and_the_next_upload_gets_a_new_one() -> None:
    reader = UploadReader(memory_bytes=512 * MB, timeout_s=0.05)
    try:
        with pytest.raises(FileTooDemanding) as slow:
            slow_file = hostile_files.workbook(hostile_files.people(20_000, "slow"))
            await reader.plan(slow_file, 50_000, uuid.uuid4())
        assert "took longer than 0.05 s" in slow.value.detail
        assert problem_of(slow.value, PROBLEMS).slug == "file-too-demanding"
        reader.timeout_s = 120
        assert len((await reader.plan(HONEST, 50_000, uuid.uuid4())).records) == 3000
    finally:
        reader.close()


async def test_a_file_that_needs_more_memory_than_the_bound_is_refused() -> None:
    # 10,000 rows need a few tens of MB over the interpreter: a bound just above what the
    # child needs to start cannot hold them.
    reader = UploadReader(memory_bytes=512 * MB, timeout_s=120)
    try:
        await reader.plan(HONEST, 50_000, uuid.uuid4())
        assert reader._child is not None
        started = psutil.Process(reader._child).memory_info().vms
        reader.close()
        reader.memory_bytes = started + 8 * MB
        big = hostile_files.workbook(hostile_files.people(10_000, "memory"))
        with pytest.raises(FileTooDemanding) as refused:
            await reader.plan(big, 50_000, uuid.uuid4())
        assert f"more than {reader.memory_bytes // MB:,} MB of memory" in refused.value.detail
        reader.memory_bytes = 512 * MB
        assert len((await reader.plan(HONEST, 50_000, uuid.uuid4())).records) == 3000, "a new child"
    finally:
        reader.close()


async def test_a_child_that_kept_too_much_memory_is_replaced() -> None:
    reader = UploadReader(memory_bytes=512 * MB, timeout_s=120, recycle_rss=1)
    try:
        await reader.plan(HONEST, 50_000, uuid.uuid4())
        assert reader._child is None, "recycled after the upload"
        await reader.plan(HONEST, 50_000, uuid.uuid4())
    finally:
        reader.close()
