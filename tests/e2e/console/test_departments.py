"""After signing in: the person's departments (membership's ``GET /v1/me/memberships``),
switching between them, and what a member who manages nobody sees."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Page, expect

from tests.support import (
    PASSWORD,
    Api,
    Person,
    accept,
    invitation_token,
    invite_ok,
    random_email,
    wait_mail_matching,
)

from .checks import check_page
from .pages import sign_in

pytestmark = pytest.mark.e2e


async def test_an_admin_of_two_departments_switches_between_them(
    page: Page, console_url: str, api: Api
) -> None:
    tag = uuid.uuid4().hex[:4]
    email = random_email("chief")
    north = await api.create_department(f"North Station {tag}", admin_email=email)
    south = await api.create_department(f"South Station {tag}", admin_email=email)
    east = await api.create_department(f"East Station {tag}")
    # A member of a third department too: invited there, accepted with the same account.
    await invite_ok(api, east, [email])
    [mail] = await wait_mail_matching(
        api, email, lambda m: "/invitations/" in m["text"], what="the invitation"
    )
    chief = Person(north.account_id, email, await api.login(email))
    assert (await accept(api, invitation_token(mail), person=chief)).status_code == 200

    await sign_in(page, console_url, email)
    await expect(page).to_have_url(f"{console_url}/")
    cards = page.get_by_role("list", name="Your departments").get_by_role("listitem")
    # By name, each with where the person stands.
    await expect(cards.get_by_role("heading")).to_have_text(
        [f"East Station {tag}", f"North Station {tag}", f"South Station {tag}"]
    )
    await expect(cards.nth(0)).to_contain_text("You are a member.")
    await expect(cards.nth(1)).to_contain_text("You are an admin")
    await check_page(page, "home")

    await page.get_by_role("link", name=f"North Station {tag}").click()
    await expect(page).to_have_url(re.compile(rf"/departments/{north.department_id}/users"))
    await expect(page.get_by_text(f"North Station {tag}", exact=True)).to_be_visible()
    await page.get_by_role("link", name="Your departments").click()
    await page.get_by_role("link", name=f"South Station {tag}").click()
    await expect(page).to_have_url(re.compile(rf"/departments/{south.department_id}/users"))
    await expect(page.get_by_text(f"South Station {tag}", exact=True)).to_be_visible()

    # Where they are a member: the department, and none of its admin pages.
    await page.get_by_role("link", name="Your departments").click()
    await page.get_by_role("link", name=f"East Station {tag}").click()
    await expect(page).to_have_url(re.compile(rf"/departments/{east.department_id}$"))
    await expect(page.get_by_text("You are a member of this department.")).to_be_visible()
    await expect(page.get_by_role("link", name="Users", exact=True)).to_have_count(0)
    await check_page(page, "department-member")
    # Opened anyway, the users page is refused by reporting, and says so.
    response = await page.goto(f"/departments/{east.department_id}/users")
    assert response is not None and response.status == 403
    await expect(
        page.get_by_role("heading", name="You are not allowed to see this")
    ).to_be_visible()


async def test_a_department_the_person_is_not_in_says_so(
    page: Page, console_url: str, api: Api
) -> None:
    mine = await api.create_department(f"Mine {uuid.uuid4().hex[:4]}")
    theirs = await api.create_department(f"Theirs {uuid.uuid4().hex[:4]}")
    await sign_in(page, console_url, mine.email)
    response = await page.goto(f"/departments/{theirs.department_id}")
    assert response is not None and response.status == 404
    await expect(page.get_by_text("You are not a member of this department.")).to_be_visible()
    await check_page(page, "department-not-mine")


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
