"""The activity page in the browser: every change with who made it, the action and date
filters, a person's changes, paging, the CSV download; a member is not allowed."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.e2e.import_support import csv_file, run_import, tag
from tests.support import (
    Api,
    added_person,
    invite_ok,
    invited_person,
    patch_member,
    random_email,
    wait_for,
)

from .checks import check_page
from .conftest import NamedAdmin as Admin
from .pages import sign_in

pytestmark = pytest.mark.e2e

IMPORTED = 55  # more than a page (50)


async def test_an_admin_sees_who_changed_what_filters_pages_and_downloads(
    page: Page, console_url: str, api: Api, admin: Admin, tmp_path: Path
) -> None:
    t = tag()
    rows = [["Email", "Name"]] + [
        [f"act-{t}-{i:02}@example.org", f"Imported {i:02}"] for i in range(IMPORTED)
    ]
    assert (await run_import(api, admin, csv_file(rows)))["counts"]["created"] == IMPORTED
    nia = random_email("nia")
    [invited] = await invite_ok(api, admin, f"Nia New <{nia}>")
    assert invited["outcome"] == "invited", invited
    # Pat's changes last: the newest, on the first page.
    pat = await added_person(api, admin)  # "Pat Member"
    assert (await patch_member(api, admin, pat.account_id, {"role": "officer"})).status_code == 200
    # The admin's join, the invitation, Pat's join and role change, the imports.
    total = 1 + 1 + 2 + IMPORTED

    await sign_in(page, console_url, admin.email)
    url = f"/departments/{admin.department_id}/activity"
    await page.goto(url)
    await expect(page.get_by_role("heading", name="Activity", level=1)).to_be_visible()
    nav = page.get_by_role("navigation", name=re.compile(admin.department_name))
    await expect(nav.get_by_role("link", name="Activity")).to_have_attribute("aria-current", "page")
    await page.get_by_label("Action").select_option("role_changed")
    await expect(page).to_have_url(re.compile(r"action=role_changed"))
    table = page.get_by_role("table")

    async def role_change_shown() -> bool | None:
        if await table.get_by_role("row").filter(has_text="Role changed").count():
            return True
        await page.reload()
        return None

    await wait_for(role_change_shown, timeout=60, interval=0.5, what="the role change")
    change = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Pat Member"))
    await expect(change).to_contain_text("member → officer")
    await expect(change).to_contain_text("Ada Admin")
    await expect(table.get_by_role("rowheader")).to_have_count(1)
    await check_page(page, "activity")

    # One person's changes: their name is a link to them.
    await page.get_by_role("link", name="Clear filters").click()
    await expect(page.get_by_label("Action")).to_have_value("")

    async def everything() -> bool | None:
        if "Showing changes 1 to 50" in (await page.get_by_role("status").inner_text()):
            return True
        await page.reload()
        return None

    await wait_for(everything, timeout=60, interval=0.5, what="a full first page")
    await check_page(page, "activity-all")
    # An invitation names the address: nobody may have an account yet.
    invitation = table.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=f"Nia New <{nia}>")
    )
    await expect(invitation).to_contain_text("Invited")
    await expect(invitation).to_contain_text("as member")
    await expect(invitation).to_contain_text("Ada Admin")
    await expect(invitation.get_by_role("link")).to_have_count(0)
    await table.get_by_role("link", name="Pat Member").first.click()
    await expect(page).to_have_url(re.compile(rf"person={pat.account_id}"))
    await expect(page.get_by_role("status")).to_contain_text("Changes to Pat Member")
    await expect(table.get_by_role("rowheader")).to_have_count(2)
    await expect(table.get_by_role("row").filter(has_text="Joined")).to_contain_text("Ada Admin")

    # Dates: nothing before today.
    await page.get_by_role("link", name="everyone").click()
    await page.get_by_label("To").fill("2020-01-01")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.get_by_text("No changes match these filters.")).to_be_visible()
    # To before From: reporting's problem, said on the field.
    await page.goto(f"{url}?from=2026-12-05&to=2026-12-01")
    await expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    problem = page.get_by_role("alert").get_by_role("link")
    await expect(problem).to_have_text("2026-12-01 is before from (2026-12-05).")
    await expect(problem).to_have_attribute("href", "#to")
    await check_page(page, "activity-error")

    # Paging: the second page has the rest.
    await page.goto(url)
    await expect(table.get_by_role("rowheader")).to_have_count(50)
    await page.get_by_role("link", name="Next page").click()
    await expect(page).to_have_url(re.compile(r"page=2"))
    await expect(table.get_by_role("rowheader")).to_have_count(total - 50)
    imported = table.get_by_role("row").filter(has_text="bulk upload").first
    await expect(imported).to_contain_text("an import (uploaded by Ada Admin)")

    # The download: every change of the view.
    await page.goto(url)
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download these changes (CSV)").click()
    download = await info.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    assert saved.name.startswith("activity-") and saved.name.endswith(".csv")
    lines: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(saved.read_text("utf-8"))))
    assert len(lines) == total
    assert {r["Action"] for r in lines} == {"joined", "role_changed", "invited"}
    [sent] = [r for r in lines if r["Action"] == "invited"]
    assert (sent["Person"], sent["Person's account ID"]) == (f"Nia New <{nia}>", "")
    assert sum(r["By (kind)"] == "import" for r in lines) == IMPORTED

    # The record's history says who made each change too.
    await page.goto(f"/departments/{admin.department_id}/users/{pat.account_id}")
    change = page.locator(".history li").filter(has_text="Role changed from Member to Officer.")
    await expect(change.locator(".history-by")).to_have_text("By Ada Admin.")


async def test_a_member_is_not_allowed_to_see_the_activity(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    member = await invited_person(api, admin, name="Mo Member")
    await sign_in(page, console_url, member.email)
    response = await page.goto(f"/departments/{admin.department_id}/activity")
    assert response is not None and response.status == 403
    await expect(
        page.get_by_role("heading", name="You are not allowed to see this")
    ).to_be_visible()
    await expect(page.get_by_role("table")).to_have_count(0)
