"""Bulk-upload rules: which column is which, what makes a row valid, the outcomes.

No I/O. A file's header row is matched to our fields forgivingly (case, spaces,
punctuation and common aliases); each row is validated on its own, and rows
repeating an earlier row's address are ``duplicate_in_file``. What the database
knows (members, accounts, employee IDs) is decided later, by the worker.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from email_validator import EmailNotValidError

from prodigy_users.contracts.email import email_key, validated_email
from prodigy_users.runtime.text import cell_text, control_in, describe, looks_like_formula

from ..errors import NoEmailColumn
from ..groups.rules import group_key

Outcome = Literal["created", "invited", "already_member", "updated", "duplicate_in_file", "invalid"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
Mode = Literal["add", "update"]
Field = Literal["name", "first_name", "last_name", "email", "role", "employee_id", "groups"]

# Compared after ``header_key``: lower case, letters and digits only.
HEADER_ALIASES: dict[Field, tuple[str, ...]] = {
    "email": (
        "email",
        "emailaddress",
        "mail",
        "mailaddress",
        "login",
        "loginemail",
        "workemail",
        "businessemail",
    ),
    "name": ("name", "fullname", "displayname", "person", "membername"),
    "first_name": ("firstname", "givenname", "forename", "first"),
    "last_name": ("lastname", "surname", "familyname", "last"),
    "role": ("role", "userrole", "memberrole", "accesslevel", "permission", "permissions"),
    "employee_id": (
        "employeeid",
        "employeenumber",
        "employeeno",
        "employeenr",
        "empid",
        "empno",
        "staffid",
        "staffnumber",
        "personnelnumber",
        "badge",
        "badgenumber",
        "badgeid",
        "ssoid",
    ),
    "groups": ("groups", "group", "groupnames", "teams", "team", "units", "unit", "shifts"),
}
_BY_KEY = {alias: f for f, aliases in HEADER_ALIASES.items() for alias in aliases}

ROLE_ALIASES = {
    "admin": "admin",
    "administrator": "admin",
    "officer": "officer",
    "member": "member",
    "user": "member",
}
GROUP_SEPARATOR = ";"
MAX_NAME = 200
MAX_EMPLOYEE_ID = 100
TEMPLATE_HEADERS = ("Name", "Email", "Role", "Employee ID", "Groups")


def header_key(text: str) -> str:
    """``'E-mail Address '`` -> ``'emailaddress'``."""
    return re.sub(r"[^0-9a-z]", "", text.casefold())


@dataclass(frozen=True)
class Columns:
    """Which column (index) each field is read from, and the headers nobody reads."""

    index: dict[Field, int]
    ignored: list[str] = field(default_factory=list)

    def header_of(self, headers: Sequence[str]) -> dict[str, str]:
        """``{field: header text}`` for the fields found."""
        return {f: headers[i] for f, i in self.index.items()}


def map_columns(headers: Sequence[str]) -> Columns:
    """Match header cells to fields; ``NoEmailColumn`` when no column holds the email."""
    index: dict[Field, int] = {}
    ignored: list[str] = []
    for i, header in enumerate(headers):
        found = _BY_KEY.get(header_key(header))
        if found is None or found in index:
            if header.strip():
                ignored.append(header)
            continue
        index[found] = i
    if "email" not in index:
        raise NoEmailColumn(
            "The first row must name the columns, one of them the email address "
            f"(e.g. {', '.join(TEMPLATE_HEADERS)}); found: "
            + (", ".join(repr(h) for h in headers if h.strip()) or "nothing")
        )
    return Columns(index, ignored)


def storable(cell: str) -> str:
    """A cell as it is kept (and shown in results.csv): PostgreSQL cannot store NUL, so
    it becomes U+FFFD; a row with one is invalid anyway (``plan_rows``)."""
    return cell.replace("\x00", "\ufffd") if "\x00" in cell else cell


@dataclass(frozen=True)
class PlannedRow:
    """One input row, validated: its fields, or already its final outcome.

    ``outcome`` is set for rows decided by the file alone (``invalid``,
    ``duplicate_in_file``); the others are ``pending`` for the worker.
    """

    line: int
    cells: tuple[str, ...]
    name: str | None = None
    email: str | None = None
    email_normalised: str | None = None
    role: str | None = None
    employee_id: str | None = None
    groups: tuple[str, ...] = ()
    outcome: Outcome | None = None
    reason: str | None = None


def _get(cells: Sequence[str], columns: Columns, name: Field) -> str:
    i = columns.index.get(name)
    if i is None or i >= len(cells):
        return ""
    return " ".join(cells[i].split())


def _name(cells: Sequence[str], columns: Columns) -> str:
    full = _get(cells, columns, "name")
    if full:
        return full
    return " ".join(
        p for p in (_get(cells, columns, "first_name"), _get(cells, columns, "last_name")) if p
    )


def _groups(raw: str) -> list[str]:
    out: dict[str, str] = {}
    for part in raw.split(GROUP_SEPARATOR):
        name = " ".join(part.split())
        if name:
            out.setdefault(group_key(name), name)
    return list(out.values())


class _Invalid(Exception):
    pass


_LABELS: dict[Field, str] = {
    "email": "email",
    "name": "name",
    "first_name": "first name",
    "last_name": "last name",
    "role": "role",
    "employee_id": "employee ID",
    "groups": "groups",
}


def _check_controls(cells: Sequence[str], columns: Columns) -> None:
    """Control characters (tabs and line breaks inside a cell too) make the row invalid,
    as the API refuses them in the same fields; columns nobody reads are not checked."""
    for field_, i in columns.index.items():
        if i < len(cells):
            found = control_in(cells[i])
            if found is not None:
                position, char = found
                raise _Invalid(
                    f"{_LABELS[field_]} contains a control character ({describe(char)}) at "
                    f"position {position + 1}: names, IDs and addresses cannot have tabs, line "
                    "breaks or other control characters"
                )


def _check_text(label: str, value: str, limit: int) -> None:
    if looks_like_formula(value):
        raise _Invalid(
            f"{label} {value[:40]!r} starts with {value[0]!r}: a spreadsheet would run it as "
            "a formula"
        )
    if len(value) > limit:
        raise _Invalid(f"{label} is longer than {limit} characters")


def _validate(cells: Sequence[str], columns: Columns) -> dict[str, Any]:
    _check_controls(cells, columns)
    raw_email = _get(cells, columns, "email")
    if not raw_email:
        raise _Invalid("email is missing")
    try:
        email = validated_email(raw_email)
    except EmailNotValidError as exc:
        raise _Invalid(f"not a valid email address: {exc}") from exc
    name = _name(cells, columns)
    if name:
        _check_text("name", name, MAX_NAME)
    raw_role = _get(cells, columns, "role")
    role = ROLE_ALIASES.get(raw_role.casefold()) if raw_role else None
    if raw_role and role is None:
        raise _Invalid(f"unknown role {raw_role[:40]!r}: use admin, officer or member")
    employee_id = _get(cells, columns, "employee_id") or None
    if employee_id:
        _check_text("employee ID", employee_id, MAX_EMPLOYEE_ID)
    groups = _groups(_get(cells, columns, "groups")) if "groups" in columns.index else []
    for group in groups:
        _check_text("group name", group, MAX_NAME)
    return {
        "name": name or None,
        "email": email,
        "email_normalised": email_key(email),
        "role": role,
        "employee_id": employee_id,
        "groups": tuple(groups),
    }


def plan_rows(rows: Iterable[tuple[int, Sequence[str]]], columns: Columns) -> list[PlannedRow]:
    """Validate every row; later rows repeating an address (or an employee ID) lose.

    Only valid rows claim an address, so a broken first row does not shadow a good
    second one.
    """
    planned: list[PlannedRow] = []
    emails: dict[str, int] = {}
    employee_ids: dict[str, int] = {}
    for line, cells in rows:
        kept = tuple(storable(c) for c in cells)
        try:
            values = _validate(cells, columns)
        except _Invalid as exc:
            planned.append(PlannedRow(line, kept, outcome="invalid", reason=str(exc)))
            continue
        key = values["email_normalised"]
        if key in emails:
            planned.append(
                PlannedRow(
                    line,
                    kept,
                    **values,
                    outcome="duplicate_in_file",
                    reason=f"same email as line {emails[key]}",
                )
            )
            continue
        employee_id = values["employee_id"]
        if employee_id is not None and employee_id in employee_ids:
            planned.append(
                PlannedRow(
                    line,
                    kept,
                    **values,
                    outcome="invalid",
                    reason=f"employee ID {employee_id!r} is also on line "
                    f"{employee_ids[employee_id]}",
                )
            )
            continue
        emails[key] = line
        if employee_id is not None:
            employee_ids[employee_id] = line
        planned.append(PlannedRow(line, kept, **values))
    return planned


# -- updates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """What an ``update`` upload changes about one member."""

    role: tuple[str, str] | None = None
    employee_id: tuple[str | None, str] | None = None
    groups_added: tuple[str, ...] = ()
    groups_removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.role or self.employee_id or self.groups_added or self.groups_removed)

    def as_json(self) -> dict[str, Any]:
        """For the row's ``changes`` column."""
        return {
            "role": list(self.role) if self.role else None,
            "employee_id": list(self.employee_id) if self.employee_id else None,
            "groups_added": list(self.groups_added),
            "groups_removed": list(self.groups_removed),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Changes:
        """Back from the ``changes`` column."""
        role = data.get("role")
        employee_id = data.get("employee_id")
        return cls(
            role=(role[0], role[1]) if role else None,
            employee_id=(employee_id[0], employee_id[1]) if employee_id else None,
            groups_added=tuple(data.get("groups_added") or ()),
            groups_removed=tuple(data.get("groups_removed") or ()),
        )

    def describe(self) -> str:
        """``role member -> officer; groups +Night shift -Day shift``."""
        parts = []
        if self.role:
            parts.append(f"role {self.role[0]} -> {self.role[1]}")
        if self.employee_id:
            parts.append(f"employee ID {self.employee_id[0] or '(none)'} -> {self.employee_id[1]}")
        if self.groups_added or self.groups_removed:
            moves = [f"+{g}" for g in self.groups_added] + [f"-{g}" for g in self.groups_removed]
            parts.append("groups " + " ".join(moves))
        return "; ".join(parts)


def changes_for(
    *,
    role: str | None,
    employee_id: str | None,
    groups: Sequence[str] | None,
    current_role: str,
    current_employee_id: str | None,
    current_groups: dict[str, str],
) -> Changes:
    """What an update row changes; an empty cell leaves that field as it is.

    ``groups`` None: the file has no groups column (or the cell is empty): groups stay.
    Otherwise the member ends up in exactly the row's groups.
    """
    wanted = {group_key(g): g for g in groups or ()}
    return Changes(
        role=(current_role, role) if role and role != current_role else None,
        employee_id=(current_employee_id, employee_id)
        if employee_id and employee_id != current_employee_id
        else None,
        groups_added=tuple(n for k, n in wanted.items() if k not in current_groups)
        if wanted
        else (),
        groups_removed=tuple(n for k, n in current_groups.items() if k not in wanted)
        if wanted
        else (),
    )


# -- results ------------------------------------------------------------------------------


def results_lines(
    headers: Sequence[str], rows: Iterable[tuple[int, Sequence[str], str | None, str | None]]
) -> Iterator[str]:
    """results.csv, line by line: line number, the input cells, outcome, reason.

    Every cell goes through ``cell_text`` (control characters out, then formulas
    neutralised), so opening the file cannot run a formula from the input, including
    one that a control character hid.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def emit(cells: Sequence[str]) -> str:
        writer.writerow([cell_text(c) for c in cells])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    width = len(headers)
    yield "\ufeff" + emit(["line", *headers, "outcome", "reason"])
    for line, cells, outcome, reason in rows:
        padded = [*cells[:width], *[""] * (width - len(cells))]
        yield emit([str(line), *padded, outcome or "pending", reason or ""])


def template_csv() -> str:
    """The downloadable CSV template: the header row only."""
    return "\ufeff" + ",".join(TEMPLATE_HEADERS) + "\r\n"


# -- what happens to a valid row ----------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A current member of the department, as an update compares against."""

    account_id: Any
    role: str
    employee_id: str | None
    groups: dict[str, str]


Step = Literal["create", "invite", "update", "done"]


@dataclass(frozen=True)
class Decision:
    """Where a valid row goes next: its final outcome, or the step that decides it."""

    step: Step
    outcome: Outcome | None = None
    reason: str | None = None
    changes: Changes | None = None
    account_id: Any = None


def employee_id_taken(employee_id: str) -> Decision:
    """Invalid: another person of the department has the row's employee ID."""
    return Decision(
        "done",
        "invalid",
        f"employee ID {employee_id!r} is already used by another person in this department",
    )


def classify(
    row: PlannedRow,
    *,
    mode: Mode,
    member: Member | None,
    has_account: bool,
    employee_id_holder: Any | None,
) -> Decision:
    """Decide a valid row from what the department and identity's accounts already hold.

    ``employee_id_holder``: the account that has the row's employee ID in the
    department (removed people keep theirs), if any.
    """
    if member is not None:
        if mode == "add":
            return Decision("done", "already_member", "already a member: left as they are")
        changes = changes_for(
            role=row.role,
            employee_id=row.employee_id,
            groups=row.groups,
            current_role=member.role,
            current_employee_id=member.employee_id,
            current_groups=member.groups,
        )
        if changes.employee_id and employee_id_holder not in (None, member.account_id):
            return employee_id_taken(changes.employee_id[1])
        if not changes:
            return Decision("done", "already_member", "already a member: nothing to change")
        return Decision("update", changes=changes, account_id=member.account_id)
    if row.employee_id and employee_id_holder is not None:
        return employee_id_taken(row.employee_id)
    if has_account:
        return Decision("invite")
    if not row.name:
        return Decision("done", "invalid", "name is missing (needed to create an account)")
    return Decision("create")


def invited_reason(*, already_invited: bool, has_extras: bool) -> str:
    """Why a row was invited rather than created, and what the invitation leaves out."""
    reason = (
        "the email already has an account and a pending invitation to this department"
        if already_invited
        else "the email already has an account: invitation sent"
    )
    if has_extras:
        reason += "; employee ID and groups are not part of an invitation (upload again in "
        reason += "update mode once they have joined)"
    return reason
