"""The users table in the browser: filters, search, sort, paging and export, against
reporting's own answers for the same view (the paged API is the reference)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.e2e.users_table_support import Dataset, walk
from tests.support import Api, Person

from .browser import new_browser
from .checks import check_page
from .pages import UsersPage, sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def dataset(users_dataset: Dataset) -> Dataset:
    """Two departments made through the public API, as reporting shows them (made once
    per worker, shared with the other modules that only read them)."""
    return users_dataset


def _names(rows: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in rows]


async def _signed_in_as(context: BrowserContext, console_url: str, person: Person) -> None:
    """A browser that is signed in as ``person`` (their token in the session cookie)."""
    await context.add_cookies(
        [{"name": "prodigy_session", "value": person.token, "url": console_url, "httpOnly": True}]
    )


async def _mark(page: Page) -> None:
    # Survives only if the page is not reloaded: an htmx swap keeps it.
    await page.evaluate("window.__sameDocument = true")


async def _same_document(page: Page) -> bool:
    return bool(await page.evaluate("window.__sameDocument === true"))


async def test_filters_search_and_sort_swap_the_table(
    page: Page, console_url: str, api: Api, dataset: Dataset
) -> None:
    a = dataset.a
    await sign_in(page, console_url, a.admin.email)
    users = await UsersPage(page).open(console_url, a.id)
    await expect(page.get_by_text(a.name)).to_be_visible()  # the department's name
    assert await users.names() == _names(await walk(api, a, {"sort": "name"}))
    await check_page(page, "users")
    await _mark(page)

    await page.get_by_label("Role").select_option("officer")
    await expect(page).to_have_url(re.compile(r"role=officer"))
    officers = _names(await walk(api, a, {"role": "officer", "sort": "name"}))
    await expect(users.table.get_by_role("rowheader")).to_have_text(officers)
    # How many: reporting's total for the view, with the filters.
    await expect(users.status).to_contain_text(f"{len(officers)} people match these filters.")

    await page.get_by_label("Status").select_option("inactive")
    await expect(page).to_have_url(re.compile(r"status=inactive"))
    view = {"role": "officer", "status": "inactive", "sort": "name"}
    await expect(users.table.get_by_role("rowheader")).to_have_text(
        _names(await walk(api, a, view))
    )

    assert await _same_document(page), "the filters reloaded the page instead of swapping"

    # "Clear filters" is a plain link: a new page with an empty form.
    await page.get_by_role("link", name="Clear filters").click()
    await expect(page.get_by_label("Role")).to_have_value("")
    await _mark(page)
    await page.get_by_label("Group").select_option(label="Night shift")
    night = _names(await walk(api, a, {"group": a.groups["Night shift"], "sort": "name"}))
    await expect(users.table.get_by_role("rowheader")).to_have_text(night)

    await page.get_by_label("Group").select_option("")
    await page.get_by_label("Search").fill("zoe")  # accent-insensitive, as reporting decides
    await expect(users.table.get_by_role("rowheader")).to_have_text(["Zoë Quinn"])
    await expect(users.status).to_contain_text("1 person matches these filters.")
    await page.get_by_label("Search").fill("zo")  # too short to count: the rows, no figure
    await expect(users.status).to_have_text(
        re.compile(r"^\s*Showing rows 1 to \d+, filtered\.\s*$")
    )
    await page.get_by_label("Search").fill("")
    await expect(users.table.get_by_role("rowheader")).to_have_count(len(a.members))

    await users.sort_by("Email")
    await expect(page).to_have_url(re.compile(r"sort=email"))
    await users.sort_by("Email")
    await expect(page).to_have_url(re.compile(r"sort=-email"))
    header = users.table.get_by_role("columnheader", name=re.compile("^Email"))
    await expect(header).to_have_attribute("aria-sort", "descending")
    await expect(users.table.get_by_role("rowheader")).to_have_text(
        _names(await walk(api, a, {"sort": "-email"}))
    )
    # A filter keeps the sort.
    await page.get_by_label("Status").select_option("active")
    await expect(users.table.get_by_role("rowheader")).to_have_text(
        _names(await walk(api, a, {"status": "active", "sort": "-email"}))
    )
    assert await _same_document(page), "the filters reloaded the page instead of swapping"

    # A view reporting refuses, asked for by htmx: the results block says why (not a 500).
    answer = await page.request.get(
        f"/departments/{a.id}/users?group=not-a-group", headers={"HX-Request": "true"}
    )
    assert answer.status == 422
    body = await answer.text()
    assert "There is a problem" in body and "<html" not in body


async def test_paging_with_the_cursor(
    page: Page, console_url: str, api: Api, dataset: Dataset
) -> None:
    a = dataset.a
    everyone = _names(await walk(api, a, {"sort": "name"}))
    assert len(everyone) > 10
    await sign_in(page, console_url, a.admin.email)
    users = await UsersPage(page).open(console_url, a.id)
    await page.get_by_label("Rows per page").select_option("10")
    await expect(users.table.get_by_role("rowheader")).to_have_text(everyone[:10])
    await expect(users.status).to_have_text(f"{len(everyone)} people. Showing rows 1 to 10.")
    await page.get_by_role("link", name="Next page").click()
    await expect(users.table.get_by_role("rowheader")).to_have_text(everyone[10:20])
    await expect(users.status).to_contain_text(f"Showing rows 11 to {min(20, len(everyone))}")
    await check_page(page, "users-page-2")
    await page.get_by_role("link", name="First page").click()
    await expect(users.table.get_by_role("rowheader")).to_have_text(everyone[:10])
    # Back: the pushed address of page 2 is a real page (loaded again, not a snapshot).
    await page.go_back()
    await expect(page).to_have_url(re.compile(r"page=2"))
    await expect(users.table.get_by_role("rowheader")).to_have_text(everyone[10:20])


async def _download(page: Page, link: str, tmp_path: Path) -> Path:
    async with page.expect_download() as info:
        await page.get_by_role("link", name=link).click()
    download = await info.value
    target = tmp_path / download.suggested_filename
    await download.save_as(target)
    return target


async def test_export_downloads_exactly_the_filtered_rows(
    page: Page, console_url: str, api: Api, dataset: Dataset, tmp_path: Path
) -> None:
    a = dataset.a
    await sign_in(page, console_url, a.admin.email)
    users = await UsersPage(page).open(console_url, a.id, "?status=active&sort=-email")
    view = {"status": "active", "sort": "-email"}
    expected = [r["email"] for r in await walk(api, a, view)]
    await page.get_by_label("Role").select_option("member")
    view["role"] = "member"
    expected = [r["email"] for r in await walk(api, a, view)]
    await expect(users.table.get_by_role("rowheader")).to_have_count(len(expected))
    assert await users.emails() == expected

    saved = await _download(page, "CSV", tmp_path)
    assert saved.name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert [r["Email"] for r in rows] == expected
    assert {r["Role"] for r in rows} == {"member"} and {r["Status"] for r in rows} == {"active"}

    saved = await _download(page, "Excel (XLSX)", tmp_path)
    sheet = load_workbook(saved, read_only=True).active
    assert sheet is not None
    lines = list(sheet.iter_rows(values_only=True))
    email_column = list(lines[0]).index("Email")
    assert [line[email_column] for line in lines[1:]] == expected


async def test_the_filters_work_without_javascript(
    browser: Browser, console_url: str, api: Api, dataset: Dataset
) -> None:
    a = dataset.a
    context = await new_browser(browser, console_url, java_script_enabled=False)
    try:
        page = await context.new_page()
        await sign_in(page, console_url, a.admin.email)
        users = await UsersPage(page).open(console_url, a.id)
        await page.get_by_label("Role").select_option("officer")
        await page.get_by_role("button", name="Apply filters").click()
        await expect(page).to_have_url(re.compile(r"role=officer"))
        await expect(users.table.get_by_role("rowheader")).to_have_text(
            _names(await walk(api, a, {"role": "officer", "sort": "name"}))
        )
    finally:
        await context.close()


async def test_an_officer_sees_the_table_and_a_member_is_not_allowed(
    page: Page, context: BrowserContext, console_url: str, dataset: Dataset
) -> None:
    a = dataset.a
    await _signed_in_as(context, console_url, dataset.shared)  # an officer of a
    users = await UsersPage(page).open(console_url, a.id)
    await expect(users.table.get_by_role("rowheader")).to_have_count(len(a.members))
    await expect(page.get_by_label("Group")).to_have_count(0)  # only admins list groups

    await context.clear_cookies()
    await _signed_in_as(context, console_url, dataset.member)
    response = await page.goto(f"/departments/{a.id}/users")
    assert response is not None and response.status == 403
    await expect(
        page.get_by_role("heading", name="You are not allowed to see this")
    ).to_be_visible()
    # What stopped them is reporting's answer, shown as it is.
    await expect(page.get_by_text("Only admins and officers of this department")).to_be_visible()
    await check_page(page, "not-allowed")
    # An export link is refused the same way.
    response = await page.goto(f"/departments/{a.id}/users/export?format=csv")
    assert response is not None and response.status == 403
