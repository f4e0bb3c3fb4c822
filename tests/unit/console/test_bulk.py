"""The bulk upload, groups and email log pages' rules without I/O: a page of
results.csv read as it streams, the progress and counts, the log's filter and links,
and the upload's body limit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from prodigy_users.console import app as console_app
from prodigy_users.console.emails_view import kind_name, log_params, page_query, status_filter
from prodigy_users.console.groups_view import find_group, members_query
from prodigy_users.console.imports_view import (
    PROBLEMS,
    page_number,
    percent,
    read_page,
    shown_counts,
    size_words,
)
from prodigy_users.console.settings import Settings
from prodigy_users.runtime.body_limit import BodyLimit

RESULTS = [
    "\ufeffline,Name,Email,outcome,reason\r\n",
    "2,Ana,ana@example.org,created,\r\n",
    '3,"Lee, Bo",bo-at-example.org,invalid,"not a valid email address: no @"\r\n',
    "\r\n",
    "4,Ana,ana@example.org,duplicate_in_file,same email as line 2\r\n",
    "5,Cy,cy@example.org,invited,had an account\r\n",
]


async def _lines(lines: list[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_a_page_of_results_reads_no_further_than_it_needs() -> None:
    first = await read_page(_lines(RESULTS), 1, size=2)
    assert first.headers == ["line", "Name", "Email", "outcome", "reason"]
    assert first.input_headers == ["Name", "Email"]
    assert [r[0] for r in first.rows] == ["2", "3"] and first.more
    assert first.rows[1][1] == "Lee, Bo"  # quoted cells stay whole
    second = await read_page(_lines(RESULTS), 2, size=2)
    assert [r[0] for r in second.rows] == ["4", "5"] and not second.more
    assert (await read_page(_lines(RESULTS), 3, size=2)).rows == []


async def test_a_preview_lists_only_the_rows_with_problems() -> None:
    page = await read_page(_lines(RESULTS), 1, only=PROBLEMS)
    assert [(r[0], r[-2]) for r in page.rows] == [("3", "invalid"), ("4", "duplicate_in_file")]
    assert (await read_page(_lines([]), 1)).rows == []


def test_progress_and_counts() -> None:
    running = {"total_rows": 200, "processed": 50, "counts": {"created": 49, "invalid": 1}}
    assert percent(running) == 25
    assert percent({"total_rows": 0, "processed": 0}) == 100
    assert shown_counts(running) == [
        ("created", "Added (new account)", 49),
        ("invalid", "Not valid", 1),
    ]
    assert size_words(10 * 1024 * 1024) == "10 MB" and size_words(64 * 1024) == "64 KB"
    assert [page_number(v) for v in (None, "", "x", "0", "3", "-1")] == [1, 1, 1, 1, 3, 1]


def test_the_email_log_filter_and_its_links() -> None:
    assert status_filter("failed") == "failed"
    assert status_filter("bogus") == "" and status_filter(None) == ""
    assert log_params("", None) == [("limit", "50")]
    assert log_params("sent", "abc") == [("limit", "50"), ("status", "sent"), ("cursor", "abc")]
    assert page_query("failed", "a b") == "status=failed&cursor=a+b"
    assert page_query("") == ""
    assert kind_name("password_reset") == "Password reset"
    assert kind_name("something_new") == "Something new"


def test_a_groups_members_are_reportings_table_filtered_by_it() -> None:
    group = uuid.uuid4()
    groups = [{"group_id": str(group), "name": "Nights", "member_count": 2}]
    assert find_group(groups, group) == groups[0]
    assert find_group(groups, uuid.uuid4()) is None
    assert ("group", str(group)) in members_query(group, None)
    assert ("cursor", "c") in members_query(group, "c")


def test_the_upload_page_takes_a_file_as_large_as_membership_does() -> None:
    settings = Settings()
    app = console_app.build_app(settings)
    stack = app.build_middleware_stack()
    limit: BodyLimit | None = None
    layer: Any = stack
    while layer is not None and limit is None:
        limit = layer if isinstance(layer, BodyLimit) else None
        layer = getattr(layer, "app", None)
    assert limit is not None
    dept = uuid.uuid4()
    assert limit.limit_for(f"/departments/{dept}/imports") > settings.upload_max_bytes
    assert limit.limit_for(f"/departments/{dept}/groups") == settings.max_body_bytes
    assert limit.limit_for(f"/departments/{dept}/imports/x/results.csv") == settings.max_body_bytes


def test_the_consoles_upload_limit_is_membership_s() -> None:
    from prodigy_users.membership.settings import Settings as MembershipSettings

    assert (
        Settings().upload_max_bytes == MembershipSettings.model_fields["import_max_bytes"].default
    )
