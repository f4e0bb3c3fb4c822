"""Rules of the users table: its views (filters, sorts, search), keyset cursors and pages.

No I/O. A cursor is opaque to clients: base64url of the last row's sort key, the
sort it belongs to and a fingerprint of the view (department and filters), so a
cursor is refused by any other sort or filter instead of silently skipping rows.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..cursor import KeyKind, cursor_document, decode_cursor, encode_cursor
from ..errors import InvalidView
from ..rules import ROLES, STATUSES, GroupNames, UserRow, sort_name

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_SEARCH = 200
# A view narrowed by a search or a group is counted row by row, up to this many (a few
# milliseconds at most); past it the answer says "more than 1,000".
COUNT_CAP = 1000
# A shorter search has no trigram to find its rows by: counting it could mean reading
# the whole department, so it is not counted.
MIN_COUNTED_SEARCH = 3

# The users table's sortable columns, as ``sort=`` names them (``-`` prefix: descending).
SortColumn = Literal["name", "email", "role", "status", "employee_id", "joined_at", "updated_at"]
SORT_COLUMNS: tuple[SortColumn, ...] = get_args(SortColumn)

# The key of each sort, after the department and before the tie-breaking account id.
# Role and status sort by name within a role/status: what people expect of a table.
SORT_KEY_KINDS: dict[SortColumn, tuple[KeyKind, ...]] = {
    "name": ("text",),
    "email": ("text",),
    "role": ("int", "text"),
    "status": ("text", "text"),
    # (no ID?, ID): rows without an employee ID come last in both directions.
    "employee_id": ("bool", "text"),
    "joined_at": ("time",),
    "updated_at": ("time",),
}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def search_term(q: str) -> str:
    """What a search for ``q`` looks for: folded like ``sort_name``, spaces collapsed.

    Control characters go: nobody types them, and the search text uses one to
    separate name, email and employee ID, so a match cannot span two of them.
    """
    return " ".join(sort_name(_CONTROL.sub(" ", q)).split())


def like_pattern(term: str) -> str:
    """A LIKE pattern matching ``term`` anywhere (``%``, ``_`` and ``\\`` taken literally)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Sort:
    """A column of the users table and a direction; ties are broken by account id."""

    column: SortColumn = "name"
    descending: bool = False

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.column


def parse_sort(value: str | None) -> Sort:
    """``name``, ``-joined_at``, ...; ``ValueError`` for anything else."""
    text = (value or "").strip() or "name"
    descending = text.startswith("-")
    column = text[1:] if descending else text
    for known in SORT_COLUMNS:
        if column == known:
            return Sort(known, descending)
    raise ValueError(f"unknown sort {text!r}; one of {', '.join(SORT_COLUMNS)}, `-` for descending")


@dataclass(frozen=True)
class Filters:
    """Which rows a view shows: any of the roles, of the statuses, in any of the groups,
    and matching the search (each empty: no condition)."""

    roles: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    groups: frozenset[uuid.UUID] = frozenset()
    search: str = ""


@dataclass(frozen=True)
class UsersView:
    """One view of a department's users table: its filters and its order."""

    department_id: uuid.UUID
    filters: Filters = field(default_factory=Filters)
    sort: Sort = field(default_factory=Sort)

    def fingerprint(self) -> str:
        """A short digest of the department and filters: what a cursor must come from."""
        doc = [
            str(self.department_id),
            sorted(self.filters.roles),
            sorted(self.filters.statuses),
            sorted(str(g) for g in self.filters.groups),
            self.filters.search,
        ]
        raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


def split_values(values: Iterable[str] | None) -> list[str]:
    """Repeated parameters, each possibly comma-separated, as one list (blanks dropped)."""
    return [v.strip() for value in values or () for v in value.split(",") if v.strip()]


def _choices(
    field_name: str, values: list[str], allowed: tuple[str, ...], errors: list[dict[str, str]]
) -> frozenset[str]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        errors.append(
            {
                "field": field_name,
                "message": f"unknown value(s) {', '.join(map(repr, unknown))}; "
                f"one of {', '.join(allowed)}",
            }
        )
    return frozenset(values)


def _group_ids(values: list[str], errors: list[dict[str, str]]) -> frozenset[uuid.UUID]:
    ids: set[uuid.UUID] = set()
    bad: list[str] = []
    for value in values:
        try:
            ids.add(uuid.UUID(value))
        except ValueError:
            bad.append(value)
    if bad:
        errors.append({"field": "group", "message": f"not a group id: {', '.join(map(repr, bad))}"})
    return frozenset(ids)


def parse_view(
    department_id: uuid.UUID,
    *,
    role: Iterable[str] | None = None,
    status: Iterable[str] | None = None,
    group: Iterable[str] | None = None,
    q: str | None = None,
    sort: str | None = None,
) -> UsersView:
    """The view the query parameters ask for; ``InvalidView`` naming every bad field."""
    errors: list[dict[str, str]] = []
    roles = _choices("role", split_values(role), ROLES, errors)
    statuses = _choices("status", split_values(status), STATUSES, errors)
    groups = _group_ids(split_values(group), errors)
    if q is not None and len(q) > MAX_SEARCH:
        errors.append({"field": "q", "message": f"at most {MAX_SEARCH} characters"})
    try:
        order = parse_sort(sort)
    except ValueError as exc:
        errors.append({"field": "sort", "message": str(exc)})
        order = Sort()
    if errors:
        raise InvalidView(errors)
    filters = Filters(roles, statuses, groups, search_term(q or ""))
    return UsersView(department_id, filters, order)


def unknown_groups(view: UsersView, known: Iterable[uuid.UUID]) -> None:
    """``InvalidView`` if the view filters by a group the department does not have."""
    missing = view.filters.groups - set(known)
    if missing:
        listed = ", ".join(sorted(str(g) for g in missing))
        raise InvalidView(
            [{"field": "group", "message": f"no such group in this department: {listed}"}]
        )


def _kinds(sort: Sort) -> tuple[KeyKind, ...]:
    return (*SORT_KEY_KINDS[sort.column], "uuid")


def encode_position(view: UsersView, keys: Sequence[Any], total: Total | None = None) -> str:
    """The cursor that resumes ``view`` after the row whose sort key is ``keys``
    (the sort's values, then the account id), carrying the view's ``total`` on to the
    next pages (counted once per walk through the view)."""
    extra = {"t": [total.rows, total.exact]} if total is not None else None
    return encode_cursor(str(view.sort), view.fingerprint(), _kinds(view.sort), keys, extra)


def decode_position(value: str, view: UsersView) -> tuple[Any, ...]:
    """The sort key a cursor resumes after; ``InvalidCursor`` unless it was issued for
    exactly this view (same department, filters and sort)."""
    return decode_cursor(value, str(view.sort), view.fingerprint(), _kinds(view.sort))


def cursor_total(value: str) -> Total | None:
    """The view's total a cursor carries (None: it carries none). Read after
    ``decode_position`` accepted the cursor for the view."""
    try:
        rows, exact = cursor_document(value)["t"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        return None
    return Total(rows, exact) if isinstance(exact, bool) else None


@dataclass(frozen=True)
class Total:
    """How many rows a view has: exactly ``rows``, or (``exact`` False) more than ``rows``."""

    rows: int
    exact: bool = True


CountMethod = Literal["kept", "capped", "none"]


def count_method(view: UsersView) -> CountMethod:
    """How to count a view's rows cheaply at any size.

    ``kept``: role and status filters only, summed from the counts the projection keeps;
    ``capped``: a search or a group, counted row by row up to ``COUNT_CAP``; ``none``: a
    search too short to be looked up by index (see ``MIN_COUNTED_SEARCH``).
    """
    search = view.filters.search
    if search and len(search) < MIN_COUNTED_SEARCH:
        return "none"
    if search or view.filters.groups:
        return "capped"
    return "kept"


def kept_total(counts: Iterable[tuple[str, str, int]], filters: Filters) -> Total:
    """The view's total from the department's counts per (role, status, members)."""
    return Total(
        sum(
            n
            for role, status, n in counts
            if (not filters.roles or role in filters.roles)
            and (not filters.statuses or status in filters.statuses)
        )
    )


def capped_total(counted: int, cap: int = COUNT_CAP) -> Total:
    """The total of a view counted up to ``cap`` + 1 rows."""
    return Total(counted) if counted <= cap else Total(cap, exact=False)


@dataclass(frozen=True)
class UsersPage:
    """One page of the users table, the department's groups that name its rows' groups,
    where the next page starts (None: the end), and how many rows the view has (None:
    not counted)."""

    items: list[UserRow]
    groups: GroupNames
    next_cursor: str | None
    total: Total | None = None


def view_page(
    rows: Sequence[tuple[UserRow, tuple[Any, ...]]],
    limit: int,
    view: UsersView,
    groups: GroupNames,
    total: Total | None = None,
) -> UsersPage:
    """Cut ``limit + 1`` fetched (row, sort key) pairs into a page: the extra only says
    there is more, and the last shown row's key is where the next page starts."""
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return UsersPage(
        [row for row, _ in shown],
        groups,
        encode_position(view, shown[-1][1], total) if more else None,
        total,
    )
