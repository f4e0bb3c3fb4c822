"""The users table end to end: every filter and their combinations, search, every sort
both ways, keyset paging, two departments that never mix, bad parameters and who may
read it (the export's route included)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.users_table_support import (
    SORTS,
    Dataset,
    expected_order,
    get_page,
    matches,
    moment,
    seen,
    users_url,
    viewer,
    walk,
)
from tests.support import Api, problem_type

pytestmark = pytest.mark.e2e


@pytest.fixture
def data(users_dataset: Dataset) -> Dataset:
    """Two departments made through the public API, as reporting shows them (made once
    per worker, shared with the other modules that only read them)."""
    return users_dataset


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["account_id"] for r in rows]


async def test_every_current_member_with_their_departments_data(api: Api, data: Dataset) -> None:
    rows = await walk(api, data.a, {})
    assert {seen(r) for r in rows} == {m.seen() for m in data.a.members.values()}
    assert not data.a.removed & set(_ids(rows)), "removed people never appear"
    only_in_b = {m.account_id for m in data.b.members.values()} - {data.shared.account_id}
    assert not only_in_b & set(_ids(rows)), "nobody of the other department"
    for row in rows:
        assert moment(row["updated_at"]) >= moment(row["joined_at"]), row
    # The person in both departments: each shows its own role, status, ID and groups.
    [in_a] = [r for r in rows if r["account_id"] == data.shared.account_id]
    [in_b] = [r for r in await walk(api, data.b, {}) if r["account_id"] == data.shared.account_id]
    assert (in_a["role"], in_a["status"], in_a["employee_id"]) == ("officer", "active", "A-7")
    assert (in_b["role"], in_b["status"], in_b["employee_id"]) == ("member", "inactive", "B-7")
    assert [g["group_id"] for g in in_a["groups"]] == [data.a.groups["Night shift"]]
    assert [g["group_id"] for g in in_b["groups"]] == [data.b.groups["Night shift"]]


def _views(data: Dataset) -> list[dict[str, Any]]:
    g = data.a.groups
    return [
        {"role": "admin"},
        {"role": "officer"},
        {"role": "member"},
        {"role": ["admin", "officer"]},  # repeated
        {"role": "admin,officer"},  # comma-separated
        {"role": ["member", "officer,admin"]},  # both: every role
        {"status": "active"},
        {"status": "inactive"},
        {"status": "active,inactive"},
        {"group": g["Night shift"]},
        {"group": g["Medics"]},
        {"group": [g["Night shift"], g["Day shift"]]},
        {"group": f"{g['Medics']},{g['+Plus crew']}"},
        {"role": "officer", "status": "inactive"},
        {"role": "member", "group": g["Night shift"]},
        {"status": "inactive", "group": [g["Night shift"], g["Medics"]]},
        {"role": "officer,member", "status": "active", "group": g["Day shift"]},
        {"role": "admin", "status": "inactive"},  # nobody
        {"q": "ana"},  # Ana Lima, dana Díaz (and not Ana Leak of the other department)
        {"q": "ALVARO"},  # álvaro: case and accents
        {"q": "núñez"},
        {"q": "zoe quinn"},
        {"q": "  Zoë   QUINN "},
        {"q": "E-1"},  # an employee ID, case-insensitively (E-100)
        {"q": "e-0"},  # e-050
        {"q": "zeta-"},  # part of an email
        {"q": "@example.org"},  # every email
        {"q": "=sum(1+2)"},
        {"q": "%"},  # a LIKE wildcard is a character like any other: nobody has one
        {"q": "_"},
        {"q": "leak"},  # only in the other department
        {"q": "person", "role": "member", "status": "active"},
        {"q": "a", "group": g["Night shift"], "role": "officer,member"},
    ]


async def test_each_filter_search_and_their_combinations(api: Api, data: Dataset) -> None:
    everyone = await walk(api, data.a, {})
    checked = 0
    for params in _views(data):
        rows = await walk(api, data.a, params)
        expected = [r for r in everyone if matches(r, params)]
        assert sorted(_ids(rows)) == sorted(_ids(expected)), params
        assert _ids(rows) == _ids(expected_order(rows, "name")), "by name unless asked"
        checked += bool(expected)
    assert checked >= 25, "most views are not empty: the filters are exercised"

    names = {p.get("q"): p for p in _views(data)}
    by_q = {q: {r["name"] for r in await walk(api, data.a, p)} for q, p in names.items() if q}
    assert by_q["ana"] == {"Ana Lima", "dana Díaz"}
    assert by_q["ALVARO"] == by_q["núñez"] == {"álvaro Núñez"}
    assert by_q["zoe quinn"] == by_q["  Zoë   QUINN "] == {"Zoë Quinn"}
    assert by_q["E-1"] == {"Ana Lima"} and by_q["e-0"] == {"Émile Zola"}
    assert by_q["zeta-"] == {"Cid Campeador"}
    assert by_q["%"] == by_q["_"] == by_q["leak"] == set()
    assert len(by_q["@example.org"]) == len(data.a.members)


@pytest.mark.parametrize("sort", [*SORTS, *(f"-{s}" for s in SORTS)])
async def test_every_sort_both_ways(api: Api, data: Dataset, sort: str) -> None:
    rows = await walk(api, data.a, {"sort": sort})
    assert len(rows) == len(data.a.members)
    assert _ids(rows) == _ids(expected_order(rows, sort))
    if sort.lstrip("-") == "employee_id":
        with_id = [r["employee_id"] is not None for r in rows]
        assert with_id == sorted(with_id, reverse=True), "rows without an ID come last"
    if sort.lstrip("-") == "role":
        ranks = [r["role"] for r in rows]
        want = ["admin", "officer", "member"]
        assert ranks == sorted(ranks, key=want.index, reverse=sort.startswith("-"))


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "name"},
        {"sort": "-name"},
        {"sort": "email"},
        {"sort": "-role"},
        {"sort": "status"},
        {"sort": "employee_id"},
        {"sort": "-employee_id"},
        {"sort": "joined_at"},
        {"sort": "-updated_at"},
        {"sort": "-joined_at", "status": "active"},
        {"sort": "role", "q": "person"},
        {"sort": "email", "role": "member,officer", "status": "active,inactive"},
    ],
)
@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_paging_walks_every_row_once(
    api: Api, data: Dataset, params: dict[str, Any], limit: int
) -> None:
    whole = await walk(api, data.a, params, limit=500)
    paged = await walk(api, data.a, params, limit=limit)
    assert len(set(_ids(paged))) == len(paged), "no row twice"
    assert _ids(paged) == _ids(whole), "none missing, in the same order"
    assert len(whole) > limit, "more than one page"


async def test_the_other_department_never_leaks_in(api: Api, data: Dataset) -> None:
    rows = await walk(api, data.b, {})
    assert {seen(r) for r in rows} == {m.seen() for m in data.b.members.values()}
    assert await walk(api, data.b, {"q": "ana lima"}) == []
    assert _ids(await walk(api, data.b, {"q": "ana"})) == _ids(
        [r for r in rows if r["name"] == "Ana Leak"]
    )
    # Not even through the group filter: a's group is unknown in b.
    r = await get_page(api, data.b, {"group": data.a.groups["Night shift"]})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["group"]


async def test_bad_parameters_name_the_field(api: Api, data: Dataset) -> None:
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"role": "boss"}, {"role"}),
        ({"role": "admin,boss"}, {"role"}),
        ({"status": "gone"}, {"status"}),
        ({"group": "night"}, {"group"}),
        ({"group": str(uuid.uuid4())}, {"group"}),  # no such group here
        ({"sort": "height"}, {"sort"}),
        ({"sort": "--name"}, {"sort"}),
        ({"q": "x" * 201}, {"q"}),
        ({"limit": 0}, {"limit"}),
        ({"limit": 501}, {"limit"}),
        ({"cursor": "not-a-cursor"}, {"cursor"}),
        ({"role": "boss", "status": "gone", "sort": "height"}, {"role", "status", "sort"}),
    ]
    for params, fields in cases:
        for url in (users_url(api, data.a.id), users_url(api, data.a.id, "/export")):
            if {"cursor", "limit"} & params.keys() and url.endswith("/export"):
                continue  # an export has no pages
            r = await api.http.get(url, params=params, headers=data.a.admin.headers)
            assert r.status_code == 422, (url, params, r.text)
            assert problem_type(r) == "validation"
            assert {e["field"] for e in r.json()["errors"]} == fields, (params, r.text)


async def test_a_cursor_belongs_to_its_sort_and_filters(api: Api, data: Dataset) -> None:
    r = await get_page(api, data.a, {"sort": "email", "role": "member", "limit": 1})
    assert r.status_code == 200, r.text
    cursor = r.json()["next_cursor"]
    assert cursor
    same = await get_page(
        api, data.a, {"sort": "email", "role": "member", "limit": 1, "cursor": cursor}
    )
    assert same.status_code == 200, same.text
    for other in (
        {"sort": "-email", "role": "member"},
        {"sort": "name", "role": "member"},
        {"sort": "email", "role": "officer"},
        {"sort": "email", "role": "member", "status": "active"},
        {"sort": "email", "role": "member", "q": "a"},
    ):
        r = await get_page(api, data.a, {**other, "limit": 1, "cursor": cursor})
        assert r.status_code == 422, (other, r.text)
        assert [e["field"] for e in r.json()["errors"]] == ["cursor"]
    r = await get_page(
        api, data.b, {"sort": "email", "role": "member", "limit": 1, "cursor": cursor}
    )
    assert r.status_code == 422, "nor another department's"


async def test_admins_and_officers_read_and_export_members_and_others_do_not(
    api: Api, data: Dataset
) -> None:
    table, export = users_url(api, data.a.id), users_url(api, data.a.id, "/export")
    officer = viewer(data.shared)  # officer of a (and a plain member of b)
    for url in (table, export):
        r = await api.http.get(url, headers=officer)
        assert r.status_code == 200, r.text
        r = await api.http.get(url, headers=viewer(data.member))
        assert r.status_code == 403 and problem_type(r) == "forbidden", r.text
        r = await api.http.get(url, headers=data.b.admin.headers)
        assert r.status_code == 403 and problem_type(r) == "forbidden", r.text
        r = await api.http.get(url)
        assert r.status_code == 401, r.text
        # Bad parameters tell an outsider nothing: the answer is still 403.
        r = await api.http.get(url, params={"role": "boss"}, headers=data.b.admin.headers)
        assert r.status_code == 403, r.text
    # The shared person is a member of b: b's reports are closed to them.
    for url in (users_url(api, data.b.id), users_url(api, data.b.id, "/export")):
        r = await api.http.get(url, headers=officer)
        assert r.status_code == 403, r.text


async def test_export_is_a_route_of_its_own_not_an_account(api: Api, data: Dataset) -> None:
    r = await api.http.get(users_url(api, data.a.id, "/export"), headers=data.a.admin.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    # The individual record is still found under /users/{account}.
    account = data.member.account_id
    r = await api.http.get(users_url(api, data.a.id, f"/{account}"), headers=data.a.admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["account_id"] == account
    r = await api.http.get(users_url(api, data.a.id, "/exports"), headers=data.a.admin.headers)
    assert r.status_code == 422, "anything else is read as an account id"
