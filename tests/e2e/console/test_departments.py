"""After signing in: the person's departments, and switching between them.

There is no "my departments" call in the APIs yet: the console lists the
departments the person opened or joined in this browser (see session.py).
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.support import PASSWORD, Api, random_email

from .checks import check_page
from .pages import sign_in

pytestmark = pytest.mark.e2e


async def test_an_admin_of_two_departments_switches_between_them(
    page: Page, console_url: str, api: Api
) -> None:
    email = random_email("chief")
    first = await api.create_department("North Station", admin_email=email)
    second = await api.create_department("South Station", admin_email=email)
    await sign_in(page, console_url, email)
    for dept in (first, second):
        await page.goto(f"/departments/{dept.department_id}")
        await expect(page).to_have_url(re.compile(rf"/departments/{dept.department_id}/users"))
    await page.get_by_role("link", name="Your departments").click()
    cards = page.get_by_role("listitem")
    # Most recent first; each says where the person stands.
    await expect(cards.get_by_role("heading")).to_have_text(["South Station", "North Station"])
    await expect(cards.first).to_contain_text("You are an admin")
    await page.get_by_role("link", name="North Station").click()
    await expect(page.get_by_text("North Station", exact=True)).to_be_visible()
    await expect(page).to_have_url(re.compile(rf"/departments/{first.department_id}/users"))


async def test_opening_a_department_by_its_id(page: Page, console_url: str, api: Api) -> None:
    admin = await api.create_department("East Station")
    await sign_in(page, console_url, admin.email)
    await page.get_by_label("Department ID").fill("not an id")
    await page.get_by_role("button", name="Open").click()
    await expect(page.get_by_label("Department ID")).to_have_attribute("aria-invalid", "true")
    await check_page(page, "departments-error")
    await page.get_by_label("Department ID").fill(admin.department_id)
    await page.get_by_role("button", name="Open").click()
    await expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    await expect(page.get_by_text("East Station", exact=True)).to_be_visible()


async def test_a_keyboard_alone_signs_in(page: Page, console_url: str, api: Api) -> None:
    admin = await api.create_department("West Station")
    await page.goto(f"/sign-in?next=/departments/{admin.department_id}")
    await page.keyboard.press("Tab")  # the skip link comes first
    await expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")  # past the product's name
    await expect(page.get_by_label("Email address")).to_be_focused()
    await page.keyboard.type(admin.email)
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    # Focus is visible: the focused field gets a visible outline.
    outline = await page.get_by_label("Password").evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none"
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
