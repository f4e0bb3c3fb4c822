"""The users table's rules (views, sorts, cursors, search) and the export's cells and files."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import os
import re
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex

from prodigy_users.reporting import tables
from prodigy_users.reporting.errors import InvalidCursor, InvalidView
from prodigy_users.reporting.rules import GroupNames, UserRow, group_refs, sort_name
from prodigy_users.reporting.users import store
from prodigy_users.reporting.users.export import (
    BOM,
    EXPORT_COLUMNS,
    HEADERS,
    XlsxSheet,
    cells,
    csv_chunk,
    csv_start,
    csv_time,
    file_name,
    slug,
)
from prodigy_users.reporting.users.rules import (
    SORT_COLUMNS,
    SORT_KEY_KINDS,
    Filters,
    Sort,
    UsersView,
    decode_position,
    encode_position,
    like_pattern,
    parse_sort,
    parse_view,
    search_term,
    split_values,
    unknown_groups,
    view_page,
)
from prodigy_users.reporting.users.service import ahead
from prodigy_users.runtime.text import cell_text

DEPT = uuid.uuid4()
NIGHT = uuid.uuid4()
JOINED = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def row(name: str = "Ana Lima", **changes: Any) -> UserRow:
    values: dict[str, Any] = {
        "department_id": DEPT,
        "account_id": uuid.uuid4(),
        "name": name,
        "sort_name": sort_name(name),
        "email": "ana@example.org",
        "role": "member",
        "status": "active",
        "employee_id": None,
        "groups": [],
        "joined_at": JOINED,
        "updated_at": JOINED + timedelta(days=1),
    }
    values.update(changes)
    return UserRow(**values)


def errors_of(**params: Any) -> dict[str, str]:
    with pytest.raises(InvalidView) as caught:
        parse_view(DEPT, **params)
    return {e["field"]: e["message"] for e in caught.value.errors}


# -- views ----------------------------------------------------------------------------


def test_repeated_and_comma_separated_values_are_one_list() -> None:
    assert split_values(["admin,officer", " member ", "", ","]) == ["admin", "officer", "member"]
    assert split_values(None) == []


def test_a_view_from_query_parameters() -> None:
    view = parse_view(
        DEPT,
        role=["admin,officer", "officer"],
        status=["inactive"],
        group=[str(NIGHT)],
        q="  ÁNA   Lima ",
        sort="-joined_at",
    )
    assert view == UsersView(
        DEPT,
        Filters(
            frozenset({"admin", "officer"}), frozenset({"inactive"}), frozenset({NIGHT}), "ana lima"
        ),
        Sort("joined_at", descending=True),
    )
    assert parse_view(DEPT) == UsersView(DEPT)
    assert parse_view(DEPT, q="   ").filters.search == ""


def test_every_bad_parameter_is_named() -> None:
    errors = errors_of(
        role=["admin,boss"], status=["gone"], group=["night"], q="x" * 201, sort="height"
    )
    assert set(errors) == {"role", "status", "group", "q", "sort"}
    assert "'boss'" in errors["role"] and "officer" in errors["role"]
    assert "'gone'" in errors["status"]
    assert "'night'" in errors["group"]
    assert "height" in errors["sort"]


@pytest.mark.parametrize("value", ["", None, "name"])
def test_the_default_sort_is_by_name(value: str | None) -> None:
    assert parse_sort(value) == Sort("name", descending=False)


@pytest.mark.parametrize("column", SORT_COLUMNS)
def test_every_column_sorts_both_ways(column: str) -> None:
    assert parse_sort(column) == Sort(column, False)  # type: ignore[arg-type]
    assert parse_sort("-" + column) == Sort(column, True)  # type: ignore[arg-type]
    assert str(parse_sort("-" + column)) == "-" + column


@pytest.mark.parametrize("value", ["--name", "+name", "Name", "groups", "-", "name,email"])
def test_unknown_sorts_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="unknown sort"):
        parse_sort(value)


def test_groups_of_another_department_are_refused() -> None:
    view = parse_view(DEPT, group=[str(NIGHT)])
    unknown_groups(view, [NIGHT, uuid.uuid4()])
    with pytest.raises(InvalidView) as caught:
        unknown_groups(view, [uuid.uuid4()])
    assert caught.value.errors[0]["field"] == "group"
    assert str(NIGHT) in caught.value.errors[0]["message"]


# -- search ---------------------------------------------------------------------------


def test_search_terms_fold_like_names() -> None:
    assert search_term("ÉMILE  Zoë") == "emile zoe"
    assert search_term("Strauß") == sort_name("STRAUSS")
    assert search_term("a\x1fb\tc") == "a b c", "no control character reaches the pattern"


def test_like_patterns_take_wildcards_literally() -> None:
    assert like_pattern("ana") == "%ana%"
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


# -- cursors --------------------------------------------------------------------------

SAMPLES: dict[str, Any] = {
    "text": 'Ana "Lima", 名前',
    "int": 2,
    "bool": True,
    "time": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2))),
}


def _keys(column: str) -> tuple[Any, ...]:
    return (*(SAMPLES[k] for k in SORT_KEY_KINDS[column]), uuid.uuid4())  # type: ignore[index]


@pytest.mark.parametrize("column", SORT_COLUMNS)
@pytest.mark.parametrize("descending", [False, True])
def test_cursors_round_trip_for_every_sort(column: str, descending: bool) -> None:
    view = UsersView(DEPT, Filters(roles=frozenset({"member"})), Sort(column, descending))  # type: ignore[arg-type]
    keys = _keys(column)
    encoded = encode_position(view, keys)
    assert "=" not in encoded and "/" not in encoded and "+" not in encoded
    assert decode_position(encoded, view) == keys


def test_a_cursor_belongs_to_its_sort_and_filters() -> None:
    view = parse_view(DEPT, role=["member"], sort="email")
    cursor = encode_position(view, _keys("email"))
    others = [
        parse_view(DEPT, role=["member"], sort="-email"),
        parse_view(DEPT, role=["member"], sort="name"),
        parse_view(DEPT, role=["admin"], sort="email"),
        parse_view(DEPT, role=["member"], status=["active"], sort="email"),
        parse_view(DEPT, role=["member"], q="ana", sort="email"),
        parse_view(DEPT, role=["member"], group=[str(NIGHT)], sort="email"),
        parse_view(uuid.uuid4(), role=["member"], sort="email"),
    ]
    for other in others:
        with pytest.raises(InvalidCursor) as caught:
            decode_position(cursor, other)
        [error] = caught.value.errors or []
        assert error["field"] == "cursor" and "another sort or filter" in error["message"]
    # The same view however it is spelled: the order of values does not matter.
    same = parse_view(DEPT, role=["member,member"], sort="email")
    assert decode_position(cursor, same)


def _forged(doc: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64 !!",
        base64.urlsafe_b64encode(b"not json").decode(),
        _forged([1, 2]),
        _forged(
            {"s": "name", "k": ["a", "a691416e-7b61-4b96-bd59-0e756ff4c138"]}
        ),  # the old name-only cursor
        "FINGERPRINT:too-few-keys",
        "FINGERPRINT:bad-uuid",
        "FINGERPRINT:number-for-text",
    ],
)
def test_bad_cursors_are_refused(value: str) -> None:
    view = UsersView(DEPT)
    fingerprint = view.fingerprint()
    forged = {
        "FINGERPRINT:too-few-keys": _forged({"s": "name", "v": fingerprint, "k": ["a"]}),
        "FINGERPRINT:bad-uuid": _forged({"s": "name", "v": fingerprint, "k": ["a", "nope"]}),
        "FINGERPRINT:number-for-text": _forged(
            {"s": "name", "v": fingerprint, "k": [1, str(uuid.uuid4())]}
        ),
    }
    with pytest.raises(InvalidCursor):
        decode_position(forged.get(value, value), view)


@pytest.mark.parametrize(
    ("column", "keys"),
    [
        ("role", [True, "ana"]),  # a bool is no rank
        ("employee_id", [1, "e-1"]),  # a number is no bool
        ("joined_at", ["2026-01-01T00:00:00"]),  # a time without zone
        ("joined_at", ["yesterday"]),
    ],
)
def test_cursor_keys_are_typed(column: str, keys: list[Any]) -> None:
    view = UsersView(DEPT, sort=Sort(column))  # type: ignore[arg-type]
    value = _forged({"s": column, "v": view.fingerprint(), "k": [*keys, str(uuid.uuid4())]})
    with pytest.raises(InvalidCursor):
        decode_position(value, view)


def test_a_full_page_points_after_its_last_row() -> None:
    view = parse_view(DEPT, sort="-joined_at")
    fetched = [(row(n), _keys("joined_at")) for n in ("Ana", "Bob", "Cid")]
    groups = GroupNames({NIGHT: "Night"})
    page = view_page(fetched, 2, view, groups)
    assert [r.name for r in page.items] == ["Ana", "Bob"]
    assert page.groups is groups
    assert page.next_cursor is not None
    assert decode_position(page.next_cursor, view) == fetched[1][1]
    assert view_page(fetched[:2], 2, view, groups).next_cursor is None
    assert view_page([], 2, view, groups).next_cursor is None


# -- SQL ------------------------------------------------------------------------------


def _bare(sql: str) -> str:
    """SQL without table names, spaces, parentheses and quotes: what the index and the
    query must agree on."""
    return re.sub(r'[\s()"]', "", sql.replace("users.", ""))


@pytest.mark.parametrize("column", SORT_COLUMNS)
@pytest.mark.parametrize("descending", [False, True])
def test_each_sort_has_its_index_and_no_parameters_in_its_key(
    column: str, descending: bool
) -> None:
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    keys = store.sort_keys(Sort(column, descending))  # type: ignore[arg-type]
    assert len(keys) == len(SORT_KEY_KINDS[column]) + 1  # type: ignore[index]
    rendered = []
    for key in keys:
        compiled = key.compile(dialect=dialect)
        assert not compiled.params, f"{column}: a parameter in {compiled} defeats its index"
        rendered.append(str(compiled))
    wanted = _bare("ON users (department_id, " + ", ".join(rendered) + ")")
    indexes = [_bare(str(CreateIndex(ix).compile(dialect=dialect))) for ix in tables.users.indexes]
    assert any(ddl.endswith(wanted) for ddl in indexes), f"no index serves {column}: {wanted}"


def test_the_search_expression_is_the_indexed_one() -> None:
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    view = parse_view(DEPT, q="ana")
    where = sa.and_(*store._where(view)).compile(dialect=dialect)
    [search] = [ix for ix in tables.users.indexes if ix.name == "users_search"]
    ddl = str(CreateIndex(search).compile(dialect=dialect))
    assert "USING gin" in ddl and "gin_trgm_ops" in ddl
    expression = ddl.split("gin (", 1)[1].rsplit(" gin_trgm_ops", 1)[0]
    assert expression.replace(" ", "") in str(where).replace("users.", "").replace(" ", "")


# -- export ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        # Control characters go first (separators become spaces, the edges are trimmed),
        # then whatever would start a formula is neutralised.
        ("\tx", "x"),
        ("\rx", "x"),
        ("\t=x", "'=x"),
        ("\x01=HYPERLINK(1)", "'=HYPERLINK(1)"),
        (" =1", "' =1"),
        ("ana", "ana"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_cells_are_neutralised(value: str, expected: str) -> None:
    assert cell_text(value) == expected


DAY = uuid.uuid4()
GROUPS = GroupNames({NIGHT: "@night", DAY: "Day"})


def record(name: str = "Ana Lima", **changes: Any) -> tuple[Any, ...]:
    """A selected export row (``EXPORT_COLUMNS`` order)."""
    values: dict[str, Any] = {
        "name": name,
        "email": "ana@example.org",
        "role": "member",
        "status": "active",
        "groups": [],
        "employee_id": None,
        "joined_at": JOINED,
        "updated_at": JOINED + timedelta(days=1),
    }
    values.update(changes)
    return tuple(values[c] for c in EXPORT_COLUMNS)


def test_group_names_order_like_group_refs() -> None:
    names = {uuid.uuid4(): n for n in ("b", "Émile", "a", "zed", "Ana")}
    ids = [*names, uuid.uuid4(), next(iter(names))]  # an unknown id and a repeat
    assert GroupNames(names).refs(ids) == group_refs(ids, names)
    assert GroupNames(names).joined(ids, "; ") == "a; Ana; b; Émile; zed"
    assert GroupNames(names).ids() == frozenset(names)
    assert GroupNames({}).refs(ids) == ()


def test_a_rows_cells() -> None:
    r = record("=HYPERLINK(1)", employee_id="-7", groups=[DAY, NIGHT])
    assert cells(r, GROUPS) == (
        "'=HYPERLINK(1)",
        "ana@example.org",
        "member",
        "active",
        "'@night; Day",
        "'-7",
        JOINED,
        JOINED + timedelta(days=1),
    )
    assert cells(record(employee_id=None), GROUPS)[4:6] == ("", "")


def test_csv_has_a_header_an_optional_bom_and_text_times() -> None:
    local = JOINED.astimezone(timezone(timedelta(hours=-5)))
    # The CSV's times come from PostgreSQL as text; ``csv_time`` is the same rule.
    r = record('Lima, "Ana"', joined_at=csv_time(local), updated_at="2026-03-05 05:06:07")
    r = (*r[:4], [DAY], *r[5:])
    text = (csv_start(bom=False) + csv_chunk([r], GROUPS)).decode()
    assert not text.startswith(BOM)
    assert csv_start(bom=True).startswith(b"\xef\xbb\xbf")
    assert csv_start(bom=True).decode().lstrip(BOM) == csv_start(bom=False).decode()
    header, line = list(csv.reader(io.StringIO(text)))
    assert tuple(header) == HEADERS
    assert line == [
        'Lima, "Ana"',
        "ana@example.org",
        "member",
        "active",
        "Day",
        "",
        "2026-03-04 05:06:07",
        "2026-03-05 05:06:07",
    ]
    assert "\r\n" in text, "RFC 4180 line ends"


def test_xlsx_opens_with_text_cells_and_times() -> None:
    sheet = XlsxSheet()
    sheet.append([record("=1+1", employee_id="E-1"), record("Bell\x07 Ringer")], GROUPS)
    out = io.BytesIO()
    sheet.save(out)
    out.seek(0)
    rows = list(load_workbook(out).active.iter_rows())  # type: ignore[union-attr]
    assert tuple(c.value for c in rows[0]) == HEADERS
    first = rows[1]
    assert first[0].value == "'=1+1" and first[0].data_type == "s", "text, not a formula"
    assert first[5].value == "E-1"
    joined = first[6].value
    assert isinstance(joined, datetime), "a date cell, not text"
    assert abs(joined - JOINED.replace(tzinfo=None)) < timedelta(milliseconds=1)
    assert rows[2][0].value == "Bell Ringer", "characters XML cannot carry are dropped"
    assert rows[2][5].value is None


def test_an_abandoned_workbook_leaves_no_file() -> None:
    sheet = XlsxSheet()
    sheet.append([record()], GROUPS)
    path = sheet._sheet.row_data_filename  # where xlsxwriter keeps the rows so far
    assert path and os.path.exists(path)
    sheet.discard()
    assert not os.path.exists(path) and sheet._file.closed
    saved = XlsxSheet()
    saved.save(io.BytesIO())
    saved.discard()  # nothing left to remove: no error either


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("North EMS", "north-ems"),
        ("  Saint-Étienne Fire & Rescue!! ", "saint-etienne-fire-rescue"),
        ("名前", ""),
        ("a" * 100, "a" * 60),
    ],
)
def test_slugs(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_file_names_carry_department_and_date() -> None:
    day = date(2026, 11, 26)
    assert file_name("North EMS", day, "csv") == "users-north-ems-2026-11-26.csv"
    assert file_name("名前", day, "xlsx") == "users-department-2026-11-26.xlsx"
    assert file_name(None, day, "csv") == "users-department-2026-11-26.csv"


# -- reading ahead of the response ------------------------------------------------------


async def _numbers(count: int, *, fail: bool = False) -> AsyncGenerator[int, None]:
    for i in range(count):
        yield i
    if fail:
        raise ValueError("the database went away")


async def test_ahead_hands_on_every_item_in_order_and_the_sources_error() -> None:
    assert [i async for i in ahead(_numbers(7))] == list(range(7))
    assert [i async for i in ahead(_numbers(0))] == []
    seen = []
    with pytest.raises(ValueError, match="went away"):
        async for i in ahead(_numbers(3, fail=True)):
            seen.append(i)
    assert seen == [0, 1, 2]


async def test_ahead_cleans_up_its_source_when_the_client_goes_away() -> None:
    """Under an HTTP server's cancel scope every await of the caller is cancelled; the
    source's clean-up (a rollback: several awaits) still runs to its end."""
    cleaned = asyncio.Event()

    async def source() -> AsyncGenerator[int, None]:
        try:
            yield 1
            await asyncio.Event().wait()  # the next chunk never comes: the client left first
            yield 2
        finally:
            for _ in range(3):
                await asyncio.sleep(0)
            cleaned.set()

    with anyio.CancelScope() as scope:
        async with contextlib.aclosing(ahead(source())) as items:
            async for item in items:
                assert item == 1
                scope.cancel()  # the client went away after the first chunk
    assert scope.cancelled_caught
    await asyncio.wait_for(cleaned.wait(), timeout=5)
