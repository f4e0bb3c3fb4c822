"""Groups in the browser: create (and a taken name said next to the field), the list
with member counts, a group's members linking to their records, rename, delete after
a confirmation."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.support import Api, invited_person, wait_for

from .checks import check_page
from .conftest import NamedAdmin as Admin
from .pages import sign_in

pytestmark = pytest.mark.e2e


async def test_an_admin_creates_renames_and_deletes_a_group_and_sees_its_members(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    person = await invited_person(api, admin, name="Gail Grouped")
    await sign_in(page, console_url, admin.email)
    groups_url = f"/departments/{admin.department_id}/groups"
    await page.goto(groups_url)
    await expect(page.get_by_role("heading", name="Groups", level=1)).to_be_visible()
    await expect(page.get_by_text("This department has no groups yet.")).to_be_visible()

    await page.get_by_label("Group name").fill("Night shift")
    await page.get_by_role("button", name="Create group").click()
    await expect(page.get_by_role("status")).to_have_text("Group Night shift created.")
    table = page.get_by_role("table")
    await expect(table.get_by_role("row", name="Night shift 0")).to_be_visible()

    # A name the department already has: membership's answer, next to the field.
    await page.get_by_label("Group name").fill("Night shift")
    await page.get_by_role("button", name="Create group").click()
    await expect(page.locator("#name-error")).to_contain_text(
        "This department already has a group with that name."
    )
    await expect(page.get_by_label("Group name")).to_have_attribute("aria-invalid", "true")
    await check_page(page, "groups-error")

    # A member, put in the group from their record (the existing page).
    await page.goto(f"/departments/{admin.department_id}/users/{person.account_id}")
    await page.get_by_label("Add to a group").select_option(label="Night shift")
    await page.get_by_role("button", name="Add to group").click()
    await expect(page.locator("#record").get_by_role("status")).to_contain_text(
        "Gail Grouped was added to Night shift."
    )

    await page.goto(groups_url)
    await expect(table.get_by_role("row", name="Night shift 1")).to_be_visible()
    await check_page(page, "groups")
    await table.get_by_role("link", name="Night shift").click()
    await expect(page.get_by_role("heading", name="Night shift", level=1)).to_be_visible()
    members = page.get_by_role("table", name="Members of Night shift, by name")

    async def listed() -> bool | None:
        if await members.get_by_role("link", name="Gail Grouped").count():
            return True
        await page.reload()  # reporting's table catches up with the membership
        return None

    await wait_for(listed, timeout=30, interval=0.5, what="Gail in the group's members")
    await check_page(page, "group")
    await members.get_by_role("link", name="Gail Grouped").click()
    await expect(page.get_by_role("heading", name="Gail Grouped", level=1)).to_be_visible()
    await page.go_back()

    # Rename.
    await page.get_by_label("New name").fill("Nights")
    await page.get_by_role("button", name="Rename group").click()
    await expect(page.get_by_role("status")).to_have_text("The group is now called Nights.")
    await expect(page.get_by_role("heading", name="Nights", level=1)).to_be_visible()
    await page.get_by_label("New name").fill("")
    await page.get_by_role("button", name="Rename group").click()
    await expect(page.locator("#name-error")).to_be_visible()

    # Delete, after saying what it does.
    await page.get_by_role("link", name="Delete Nights").click()
    await expect(page.get_by_role("heading", name="Delete the group Nights?")).to_be_visible()
    await expect(page.get_by_text("Its 1 member stays in")).to_be_visible()
    await check_page(page, "group-delete")
    await page.get_by_role("button", name="Delete Nights").click()
    await expect(page).to_have_url(f"{console_url}{groups_url}?notice=deleted")
    await expect(page.get_by_role("status")).to_contain_text("The group was deleted.")
    await expect(page.get_by_role("link", name="Nights")).to_have_count(0)
    # The person is still in the department.
    await page.goto(f"/departments/{admin.department_id}/users/{person.account_id}")
    await expect(page.get_by_role("heading", name="Gail Grouped", level=1)).to_be_visible()
