"""A department for the users-table tests (many roles, statuses, groups, formula-like
names, a removed person, a person shared with a second department) and the rules the
tests hold the table to, written out independently of reporting's code."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support import (
    Admin,
    Api,
    Person,
    accept,
    bearer,
    invitation_token,
    invite_ok,
    patch_member,
    random_email,
    wait_for,
    wait_mail_matching,
)

SORTS = ("name", "email", "role", "status", "employee_id", "joined_at", "updated_at")
ROLE_RANK = {"admin": 0, "officer": 1, "member": 2}


@dataclass
class Member:
    """What the test made a person in one department."""

    account_id: str
    name: str
    email: str
    role: str
    status: str = "active"
    employee_id: str | None = None
    groups: set[str] = field(default_factory=set)

    def seen(self) -> tuple[Any, ...]:
        """What the users table must show of them."""
        return (
            self.account_id,
            self.name,
            self.email,
            self.role,
            self.status,
            self.employee_id,
            frozenset(self.groups),
        )


@dataclass
class Department:
    """A department, its admin and what its users table must hold."""

    admin: Admin
    name: str
    groups: dict[str, str] = field(default_factory=dict)  # name -> id
    members: dict[str, Member] = field(default_factory=dict)  # account id -> member
    removed: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        """The department id."""
        return self.admin.department_id


@dataclass
class Dataset:
    """Department ``a`` under test, department ``b`` that must never leak into it."""

    a: Department
    b: Department
    shared: Person  # officer of a, inactive member of b
    member: Person  # a plain member of a


def users_url(api: Api, dept: str, tail: str = "") -> str:
    """The users table's URL (``tail``: ``/export``, ``/{account}``)."""
    return api.url("reporting", f"/v1/reports/departments/{dept}/users{tail}")


def seen(row: dict[str, Any]) -> tuple[Any, ...]:
    """A users-table row, comparable with ``Member.seen``."""
    return (
        row["account_id"],
        row["name"],
        row["email"],
        row["role"],
        row["status"],
        row["employee_id"],
        frozenset(g["name"] for g in row["groups"]),
    )


async def get_page(
    api: Api, dept: Department, params: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    """One GET of the users table."""
    return await api.http.get(
        users_url(api, dept.id), params=params, headers=headers or dept.admin.headers
    )


async def walk(
    api: Api, dept: Department, params: dict[str, Any], limit: int = 500
) -> list[dict[str, Any]]:
    """Every row of a view, page by page (``limit`` rows a page)."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        paging = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await get_page(api, dept, {**params, **paging})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        rows.extend(body["items"])
        cursor = body.get("next_cursor")
        if not cursor:
            return rows
        assert len(body["items"]) == limit, "only a full page points at a next one"
    raise AssertionError("the cursor never ended")


# -- the rules, independently --------------------------------------------------------------


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a name or search."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def matches(row: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether a row belongs in the view ``params`` asks for (the oracle)."""

    def values(name: str) -> list[str]:
        given = params.get(name) or []
        listed = [given] if isinstance(given, str) else list(given)
        return [v.strip() for item in listed for v in item.split(",") if v.strip()]

    roles, statuses, groups = values("role"), values("status"), values("group")
    q = " ".join(fold(params.get("q") or "").split())
    haystack = (fold(row["name"]), row["email"].lower(), (row["employee_id"] or "").lower())
    return (
        (not roles or row["role"] in roles)
        and (not statuses or row["status"] in statuses)
        and (not groups or any(g["group_id"] in groups for g in row["groups"]))
        and (not q or any(q in text for text in haystack))
    )


def moment(value: str) -> datetime:
    """An API time."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def expected_order(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """``rows`` in the order ``sort`` promises: by the column (names and emails without
    regard to case or accents, roles by rank, no employee ID last either way), ties by
    account id, ``-`` for descending."""
    descending = sort.startswith("-")
    column = sort.lstrip("-")

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        account = uuid.UUID(row["account_id"])
        if column == "name":
            return (fold(row["name"]), account)
        if column == "email":
            return (row["email"].lower(), account)
        if column == "role":
            return (ROLE_RANK[row["role"]], fold(row["name"]), account)
        if column == "status":
            return (row["status"], fold(row["name"]), account)
        if column == "employee_id":
            return ((row["employee_id"] or "").lower(), account)
        return (moment(row[column]), account)

    if column == "employee_id":
        with_id = [r for r in rows if r["employee_id"] is not None]
        without = [r for r in rows if r["employee_id"] is None]
        return sorted(with_id, key=key, reverse=descending) + sorted(
            without, key=key, reverse=descending
        )
    return sorted(rows, key=key, reverse=descending)


# -- building the departments -----------------------------------------------------------------


async def _group(api: Api, dept: Department, name: str) -> str:
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{dept.id}/groups"),
        json={"name": name},
        headers=dept.admin.headers,
    )
    assert r.status_code == 201, r.text
    dept.groups[name] = r.json()["group_id"]
    return dept.groups[name]


async def _put(api: Api, dept: Department, member: Member, group: str) -> None:
    r = await api.http.put(
        api.url(
            "membership",
            f"/v1/departments/{dept.id}/groups/{dept.groups[group]}/members/{member.account_id}",
        ),
        headers=dept.admin.headers,
    )
    assert r.status_code == 204, r.text
    member.groups.add(group)


async def _add(
    api: Api, dept: Department, name: str, prefix: str, role: str = "member", **changes: Any
) -> Member:
    # No prefix ends in "e": searches for "e-0" or "E-1" find employee IDs, not emails.
    assert not prefix.endswith("e"), prefix
    email = random_email(prefix)
    r = await api.add_member(dept.admin, email, name=name, role=role)
    # 202: identity took longer than the API waits (a busy machine); it still completes.
    assert r.status_code in (201, 202), r.text
    body = r.json()
    if r.status_code == 202:
        done = await api.wait_operation(body["operation_url"], dept.admin.headers)
        assert done["status"] == "succeeded", done
        body = done["result"]
    member = Member(body["account_id"], name, email, role)
    dept.members[member.account_id] = member
    await _change(api, dept, member, **changes)
    return member


async def _change(api: Api, dept: Department, member: Member, **changes: Any) -> None:
    if changes:
        r = await patch_member(api, dept.admin, member.account_id, changes)
        assert r.status_code == 200, r.text
        for key, value in changes.items():
            setattr(member, key, value)


async def _department(api: Api, name: str) -> Department:
    admin = await api.create_department(name=name)
    dept = Department(admin, name)
    dept.members[admin.account_id] = Member(admin.account_id, "Ada Admin", admin.email, "admin")
    return dept


async def build(api: Api) -> Dataset:
    """Make both departments through the public API and wait until reporting shows them."""
    tag = uuid.uuid4().hex[:6]
    a = await _department(api, f"North EMS {tag}")
    b = await _department(api, f"South Fire {tag}")
    for name in ("Night shift", "Day shift", "Medics", "+Plus crew"):
        await _group(api, a, name)
    await _group(api, b, "Night shift")

    ana = await _add(api, a, "Ana Lima", "ana", employee_id="E-100")
    alvaro = await _add(api, a, "álvaro Núñez", "alvaro", role="officer")
    emile = await _add(api, a, "Émile Zola", "emz", status="inactive", employee_id="e-050")
    await _add(api, a, "bob Stone", "bob", employee_id="E-200")
    zoe = await _add(api, a, "Zoë Quinn", "zq", role="officer", status="inactive")
    formula = await _add(api, a, "=SUM(1+2)", "formula", employee_id="=1+1")
    plus = await _add(api, a, "+Plus Person", "plus")
    await _add(api, a, "-Minus Person", "minus", role="admin", employee_id="-42")
    at = await _add(api, a, "@At Person", "at", status="inactive")
    cid = await _add(api, a, "Cid Campeador", "zeta", employee_id="E-300")
    await _add(api, a, "dana Díaz", "dana", role="officer", employee_id="X-9")
    gone = await _add(api, a, "Gone Person", "gon", employee_id="E-999")
    for member, group in (
        (ana, "Night shift"),
        (alvaro, "Night shift"),
        (alvaro, "Day shift"),
        (emile, "Medics"),
        (zoe, "Day shift"),
        (formula, "+Plus crew"),
        (plus, "+Plus crew"),
        (plus, "Medics"),
        (at, "Night shift"),
        (cid, "Day shift"),
        (gone, "Night shift"),
    ):
        await _put(api, a, member, group)
    await _change(api, a, ana, role="officer")  # a later change: a later updated_at
    await _change(api, a, ana, role="member")
    r = await api.http.delete(
        api.url("membership", f"/v1/departments/{a.id}/members/{gone.account_id}"),
        headers=a.admin.headers,
    )
    assert r.status_code == 204, r.text
    a.removed.add(gone.account_id)
    del a.members[gone.account_id]

    # In b: someone whose name matches searches in a, and a person in both departments.
    await _add(api, b, "Ana Leak", "leak", employee_id="E-100")
    shared_b = await _add(api, b, "Shared Person", "shared", status="inactive", employee_id="B-7")
    await _put(api, b, shared_b, "Night shift")
    [invited] = await invite_ok(api, a.admin, [shared_b.email], role="officer")
    assert invited["outcome"] == "invited", invited
    [invitation] = await wait_mail_matching(
        api, shared_b.email, lambda m: "/invitations/" in m["text"], what="invitation"
    )
    shared = Person(
        shared_b.account_id, shared_b.email, api.keys.token(uuid.UUID(shared_b.account_id))
    )
    r = await accept(api, invitation_token(invitation), person=shared)
    assert r.status_code == 200, r.text
    shared_a = Member(shared.account_id, "Shared Person", shared.email, "officer")
    a.members[shared.account_id] = shared_a
    await _change(api, a, shared_a, employee_id="A-7")
    await _put(api, a, shared_a, "Night shift")

    for dept in (a, b):
        await wait_shown(api, dept)
    plain = Person(ana.account_id, ana.email, api.keys.token(uuid.UUID(ana.account_id)))
    return Dataset(a, b, shared, plain)


async def wait_shown(api: Api, dept: Department) -> None:
    """Wait until the department's users table is exactly what the test made."""
    expected = {m.seen() for m in dept.members.values()}

    async def probe() -> bool:
        r = await get_page(api, dept, {"limit": 500})
        if r.status_code == 403:  # reporting has not seen the admin yet
            return False
        assert r.status_code == 200, r.text
        return {seen(row) for row in r.json()["items"]} == expected

    await wait_for(probe, timeout=60, what=f"{dept.name}'s users table")


def viewer(person: Person) -> dict[str, str]:
    """Authorization for someone who is not the admin."""
    return bearer(person.token)
