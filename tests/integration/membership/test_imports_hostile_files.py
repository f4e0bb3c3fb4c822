"""Uploads built to cost more than they are worth: refused before they are expanded,
each with a problem that names what is wrong; and a sheet's declared size ignored."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from multiprocessing import get_context
from multiprocessing.queues import Queue
from typing import Any

import pytest

from prodigy_users.membership.errors import PROBLEMS
from prodigy_users.membership.imports.files import MAX_COLUMNS, read_table
from prodigy_users.membership.imports.parsing import plan_upload
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.problems import problem_of
from tests import hostile_files

# What reading one upload may add to a process that has the parsing modules loaded:
# honest files of thousands of rows need tens of MB (see test_an_honest_file_fits).
BUDGET_MB = 150


def _peak_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def _child(build: Callable[[], bytes], out: Queue[Any]) -> None:
    data = build()  # built here: the peak is the child's own, not the test's
    import prodigy_users.membership.imports.parsing  # noqa: F401

    loaded = _peak_mb()
    started = time.perf_counter()
    try:
        plan = plan_upload(data, 50_000, uuid.uuid4())
        result: Any = ("ok", len(plan.records), max(len(r[2]) for r in plan.records))
    except DomainError as error:
        problem = problem_of(error, PROBLEMS)
        result = ("refused", problem.status, problem.slug, problem.detail, problem.errors)
    out.put((result, _peak_mb() - loaded, time.perf_counter() - started, len(data)))


def read_apart(build: Callable[[], bytes]) -> tuple[Any, float, float, int]:
    """Build and read a file in a fresh process: (outcome, MB its reading added, s, size)."""
    context = get_context("spawn")
    out: Queue[Any] = context.Queue()
    process = context.Process(target=_child, args=(build, out))
    process.start()
    try:
        result: tuple[Any, float, float, int] = out.get(timeout=240)
        return result
    finally:
        process.join(30)


pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux only")


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (hostile_files.shared_strings_bomb, "expands 41"),
        (hostile_files.many_shared_strings, "more than 500,000 entries"),
        (hostile_files.high_ratio_part, "'xl/media/padding.bin' of the XLSX file expands"),
        (hostile_files.too_much_in_all, "would expand to 300 MB"),
        (hostile_files.many_parts, "has 1,009 parts"),
        (hostile_files.entity_expansion, "declares XML entities"),
    ],
    ids=["shared-strings bomb", "many shared strings", "high ratio", "total", "parts", "DTD"],
)
def test_each_hostile_file_is_refused_naming_the_problem_within_budget(
    build: Callable[[], bytes], says: str
) -> None:
    outcome, added_mb, seconds, size = read_apart(build)
    assert outcome[:3] == ("refused", 422, "unsafe-file"), outcome
    assert says in outcome[3], outcome[3]
    assert outcome[4][0]["field"] == "file"
    assert added_mb < BUDGET_MB, f"{added_mb:.0f} MB to refuse a {size / 1024:.0f} KB file"
    assert seconds < 20, f"{seconds:.1f} s to refuse it"


def test_a_declared_dimension_is_ignored() -> None:
    # 2,000 rows declared 16,384 columns wide: read as the two columns they have.
    outcome, added_mb, _, _ = read_apart(hostile_files.declared_huge_dimension)
    assert outcome == ("ok", 2000, 2)
    assert added_mb < BUDGET_MB / 3, f"{added_mb:.0f} MB"


def test_an_honest_file_fits() -> None:
    outcome, added_mb, _, _ = read_apart(_honest)
    assert outcome == ("ok", 10_000, 2)
    assert added_mb < BUDGET_MB / 2, f"{added_mb:.0f} MB for 10,000 rows"


def _honest() -> bytes:
    return hostile_files.workbook(hostile_files.people(10_000, "honest"))


def test_rows_are_read_no_wider_than_the_columns_limit() -> None:
    wide = [[f"c{i}" for i in range(100)], ["Ana", "ana@example.org", *["x"] * 98]]
    wide[0][0:2] = ["Name", "Email"]
    table = read_table(hostile_files.workbook(wide), max_rows=10)
    assert len(table.headers) == MAX_COLUMNS and len(table.rows[0][1]) == MAX_COLUMNS


def test_a_gap_of_a_million_rows_costs_little() -> None:
    data = hostile_files.workbook(hostile_files.people(2, "gap"))
    import io
    import zipfile

    sheet = zipfile.ZipFile(io.BytesIO(data)).read(hostile_files.SHEET).decode()
    far = (
        '<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>Zed</t></is></c>'
        '<c r="B1048576" t="inlineStr"><is><t>zed@example.org</t></is></c></row></sheetData>'
    )
    data = hostile_files.rewritten(
        data, {hostile_files.SHEET: sheet.replace("</sheetData>", far).encode()}
    )
    started = time.perf_counter()
    table = read_table(data, max_rows=10)
    assert [line for line, _ in table.rows] == [2, 3, 1048576]
    assert time.perf_counter() - started < 30
