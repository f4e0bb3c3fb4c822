"""The users table's view as the console's URLs carry it: filters, search, sort, page.

No I/O. The same view gives the query for reporting's users table, the export link
(exactly the rows on screen: same filters, same sort) and the links that change
one thing (a column's sort, the next page).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

ROLES = ("admin", "officer", "member")
STATUSES = ("active", "inactive")
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_LIMIT = 50

# Columns that sort (reporting's ``sort=`` names), in the table's order, and their headings.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "Name"),
    ("email", "Email"),
    ("role", "Role"),
    ("status", "Status"),
    ("employee_id", "Employee ID"),
    ("joined_at", "Joined"),
)
SORTABLE = frozenset(c for c, _ in COLUMNS)


@dataclass(frozen=True)
class UsersView:
    """One view of the table; empty strings mean "any"."""

    role: str = ""
    status: str = ""
    group: str = ""
    q: str = ""
    sort: str = "name"
    limit: int = DEFAULT_LIMIT
    cursor: str = ""
    page: int = 1

    @classmethod
    def parse(
        cls,
        *,
        role: str | None = None,
        status: str | None = None,
        group: str | None = None,
        q: str | None = None,
        sort: str | None = None,
        limit: str | None = None,
        cursor: str | None = None,
        page: str | None = None,
    ) -> UsersView:
        """From query parameters; what the console cannot read falls back to the default
        (reporting judges the rest and its answer is shown)."""
        size = int(limit) if limit and limit.isdigit() else DEFAULT_LIMIT
        number = int(page) if page and page.isdigit() and int(page) > 0 else 1
        return cls(
            role=(role or "").strip(),
            status=(status or "").strip(),
            group=(group or "").strip(),
            q=" ".join((q or "").split()),
            sort=(sort or "name").strip() or "name",
            limit=size if size in PAGE_SIZES else DEFAULT_LIMIT,
            cursor=(cursor or "").strip(),
            page=number if cursor else 1,
        )

    @property
    def sort_column(self) -> str:
        """The sorted column's name."""
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        """Whether the sort is descending."""
        return self.sort.startswith("-")

    @property
    def filtered(self) -> bool:
        """Whether any filter or search narrows the table."""
        return bool(self.role or self.status or self.group or self.q)

    @property
    def first_row(self) -> int:
        """The number of the first row on this page (1-based)."""
        return (self.page - 1) * self.limit + 1

    def filters(self) -> list[tuple[str, str]]:
        """Filters, search and sort: what defines the rows (not the page)."""
        pairs = [("role", self.role), ("status", self.status), ("group", self.group)]
        pairs += [("q", self.q), ("sort", self.sort)]
        return [(k, v) for k, v in pairs if v]

    def report_params(self) -> list[tuple[str, str]]:
        """Query of reporting's users table for this page."""
        params = [*self.filters(), ("limit", str(self.limit))]
        if self.cursor:
            params.append(("cursor", self.cursor))
        return params

    def export_params(self, file_format: str) -> list[tuple[str, str]]:
        """Query of reporting's export: every row of the view, in its order."""
        return [*self.filters(), ("format", file_format)]

    def query(self, **changes: str | int) -> str:
        """This console's query string for the view with ``changes`` applied."""
        view = replace(self, **changes)  # type: ignore[arg-type]
        pairs = view.filters()
        if view.limit != DEFAULT_LIMIT:
            pairs.append(("limit", str(view.limit)))
        if view.cursor:
            pairs += [("cursor", view.cursor), ("page", str(view.page))]
        return urlencode(pairs)

    def sort_query(self, column: str) -> str:
        """The query that sorts by ``column``: ascending first, then the other way."""
        target = f"-{column}" if self.sort == column else column
        return self.query(sort=target, cursor="", page=1)

    def aria_sort(self, column: str) -> str:
        """The ``aria-sort`` of a column heading."""
        if self.sort_column != column:
            return "none"
        return "descending" if self.descending else "ascending"

    def next_query(self, cursor: str) -> str:
        """The query of the page after this one."""
        return self.query(cursor=cursor, page=self.page + 1)

    def first_query(self) -> str:
        """The query of the first page."""
        return self.query(cursor="", page=1)
