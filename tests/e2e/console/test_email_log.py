"""The email log in the browser: the emails a test's actions caused, with their kind and
status, a refused address as failed with its reason, the status filter; a member is
not allowed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.support import Api, invited_person, random_email, wait_for

from .checks import check_page
from .conftest import NamedAdmin as Admin
from .pages import sign_in

pytestmark = pytest.mark.e2e


async def test_an_admin_sees_what_was_sent_to_whom_and_what_failed(
    page: Page, console_url: str, api: Api, admin: Admin, controllable: Any
) -> None:
    welcomed = random_email("welcomed")
    doomed = random_email("bounce")
    controllable.mail.reject(doomed)  # the relay refuses it for good (550)
    for email in (welcomed, doomed):
        assert (await api.add_member(admin, email, name="Wes Welcome")).status_code == 201
    await api.wait_mail(welcomed)

    await sign_in(page, console_url, admin.email)
    url = f"/departments/{admin.department_id}/emails"
    await page.goto(url)
    await expect(page.get_by_role("heading", name="Email log", level=1)).to_be_visible()
    table = page.get_by_role("table")

    def row(email: str) -> Any:
        return table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=email))

    async def settled() -> bool | None:
        sent = await row(welcomed).filter(has_text="Sent").count()
        failed = await row(doomed).filter(has_text="Failed").count()
        if sent and failed:
            return True
        await page.reload()
        return None

    await wait_for(settled, timeout=60, interval=0.5, what="the welcome sent, the bounce failed")
    await expect(row(welcomed)).to_contain_text("Welcome (set your password)")
    await expect(row(doomed)).to_contain_text("550")
    await check_page(page, "email-log")

    # The filter: only the failed ones (an htmx swap, and the URL says it).
    await page.get_by_label("Status").select_option("failed")
    await expect(page).to_have_url(re.compile(r"status=failed"))
    await expect(table.get_by_role("rowheader")).to_have_text([doomed])
    await page.get_by_label("Status").select_option("pending")
    await expect(page.get_by_text("No emails with status queued yet.")).to_be_visible()


async def test_a_member_is_not_allowed_to_see_the_email_log(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    member = await invited_person(api, admin, name="Mo Member")
    await sign_in(page, console_url, member.email)
    response = await page.goto(f"/departments/{admin.department_id}/emails")
    assert response is not None and response.status == 403
    await expect(
        page.get_by_role("heading", name="You are not allowed to see this")
    ).to_be_visible()
    await expect(page.get_by_role("table")).to_have_count(0)
