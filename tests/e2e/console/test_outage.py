"""A service that is down gets a clear page or section; the rest of the console works."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.support import Admin

from .checks import check_page
from .pages import UsersPage, sign_in

pytestmark = pytest.mark.e2e


async def test_reporting_down_the_users_page_says_so_and_the_rest_works(
    page: Page, console_url: str, admin: Admin, controllable: Any
) -> None:
    await sign_in(page, console_url, admin.email)
    await controllable.stop_service("reporting")
    try:
        users = await UsersPage(page).open(console_url, admin.department_id)
        await expect(page.get_by_role("alert")).to_have_text(
            "The reports service is not answering; try again in a minute."
        )
        await check_page(page, "users-reporting-down")
        # The filters still work (they ask again, and are told the same).
        await page.get_by_label("Role").select_option("admin")
        await expect(page.get_by_role("alert")).to_contain_text("not answering")
        assert await users.table.count() == 0
        # An export is a page of its own that says which service is away.
        response = await page.goto(f"/departments/{admin.department_id}/users/export?format=csv")
        assert response is not None and response.status == 503
        await expect(
            page.get_by_role("heading", name="The reports service is not answering")
        ).to_be_visible()
        # Pages that need only the other services keep working.
        await page.goto("/")
        await expect(page.get_by_role("heading", name="Your departments")).to_be_visible()
        await page.goto("/forgot-password")
        await expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    finally:
        await controllable.start_service("reporting")
    await UsersPage(page).open(console_url, admin.department_id)
    await expect(users.table).to_be_visible()
