"""Plain helpers of the bulk upload pages (no I/O): outcomes in words, the progress,
and a page of results.csv read as it streams."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

# membership's outcomes, in the order the counts are shown, with their words.
OUTCOMES: tuple[tuple[str, str], ...] = (
    ("created", "Added (new account)"),
    ("invited", "Invited (had an account)"),
    ("already_member", "Already a member"),
    ("updated", "Updated"),
    ("duplicate_in_file", "Repeated in the file"),
    ("invalid", "Not valid"),
    ("pending", "Not done yet"),
)
OUTCOME_NAMES = dict(OUTCOMES)
# Rows a preview lists: those that will not go in as they are.
PROBLEMS = frozenset({"invalid", "duplicate_in_file"})
RESULTS_PAGE = 50
MIB = 1024 * 1024


def outcome_name(outcome: str) -> str:
    """An outcome in words."""
    return OUTCOME_NAMES.get(outcome, outcome.replace("_", " ").capitalize())


def percent(upload: dict[str, Any]) -> int:
    """How far the upload is (0-100)."""
    total = int(upload.get("total_rows") or 0)
    done = int(upload.get("processed") or 0)
    return 100 if total == 0 else min(100, done * 100 // total)


def shown_counts(upload: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(outcome, words, count) of the outcomes that have rows, in the usual order."""
    counts = upload.get("counts") or {}
    return [(key, name, int(counts.get(key) or 0)) for key, name in OUTCOMES if counts.get(key)]


def size_words(limit: int) -> str:
    """A byte limit as people say it ("10 MB")."""
    return f"{limit // MIB} MB" if limit % MIB == 0 else f"{limit // 1024} KB"


def page_number(value: str | None) -> int:
    """A ``page`` query value (1 when missing or nonsense)."""
    return int(value) if value and value.isdigit() and 0 < int(value) < 10**6 else 1


@dataclass
class ResultsPage:
    """One page of results.csv: its header, its rows, and whether more follow."""

    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    more: bool = False

    @property
    def input_headers(self) -> list[str]:
        """The file's own columns (results.csv adds line, outcome and reason)."""
        return self.headers[1:-2]


def _cells(line: str) -> list[str]:
    return next(csv.reader([line]), [])


async def read_page(
    lines: AsyncIterator[str],
    page: int,
    *,
    only: Iterable[str] | None = None,
    size: int = RESULTS_PAGE,
) -> ResultsPage:
    """Page ``page`` of results.csv (``only``: rows with these outcomes), reading no
    further than one row past it. Cells hold no line breaks (membership writes plain
    text), so a line is a row."""
    wanted = frozenset(only) if only is not None else None
    out = ResultsPage()
    skip = (page - 1) * size
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            continue
        cells = _cells(line.lstrip("\ufeff"))
        if not out.headers:
            out.headers = cells
            continue
        if wanted is not None and (len(cells) < 2 or cells[-2] not in wanted):
            continue
        if skip:
            skip -= 1
            continue
        if len(out.rows) == size:
            out.more = True
            break
        out.rows.append(cells)
    return out
