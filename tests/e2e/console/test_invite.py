"""Bringing people in, in the browser: invite a pasted list (an outcome per address),
remind and revoke from Pending invites; add one person, and "Invite instead" when the
address already has an account; the registration link (copy, join, rotate, switch
off); keyboard-only invite and add; a member is not allowed on any of it."""

from __future__ import annotations

import pytest
from playwright.async_api import BrowserContext, Locator, Page, expect

from tests.support import PASSWORD, Api, invite_ok, invited_person, random_email

from .browser import new_browser
from .checks import check_page
from .conftest import NamedAdmin as Admin
from .pages import sign_in

pytestmark = pytest.mark.e2e


async def tab_to(page: Page, target: Locator, *, presses: int = 60) -> None:
    """Press Tab until ``target`` has the focus (as a keyboard user gets there)."""
    for _ in range(presses):
        if await target.evaluate("e => e === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{target} never got the focus with Tab")


async def register(page: Page, email: str) -> None:
    """Fill in "Create my account" on a join page and send it."""
    form = page.get_by_role("region", name="Create my account")
    await form.get_by_label("Full name").fill("Jo Joiner")
    await form.get_by_label("Email address").fill(email)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Create my account").click()


async def test_an_admin_invites_a_pasted_list_then_reminds_and_revokes(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    member = await invited_person(api, admin, name="Mia Member")
    earlier = random_email("earlier")
    await invite_ok(api, admin, [earlier])
    new = random_email("newbie")
    await sign_in(page, console_url, admin.email)
    await page.goto(f"/departments/{admin.department_id}/invitations")
    await expect(page.get_by_role("heading", name="Invite people", level=1)).to_be_visible()

    # Nothing pasted: said next to the box.
    await page.get_by_role("button", name="Send invitations").click()
    await expect(page.locator("#emails-error")).to_contain_text("Enter at least one email")

    pasted = f"Nina New <{new}>\n{member.email}; {earlier}, not-an-address"
    await page.get_by_label("Email addresses").fill(pasted)
    await page.get_by_label("Role").select_option(label="Officer")
    await page.get_by_role("button", name="Send invitations").click()
    outcome = page.get_by_role("table", name="Outcome per address, in the order pasted")
    await expect(outcome.get_by_role("row", name=f"{new} Invited")).to_be_visible()
    await expect(
        outcome.get_by_role("row", name=f"{member.email} Already a member")
    ).to_be_visible()
    await expect(outcome.get_by_role("row", name=f"{earlier} Already invited")).to_be_visible()
    await expect(outcome.get_by_role("row", name="not-an-address Not valid")).to_be_visible()
    await check_page(page, "invite-outcomes")

    pending = page.get_by_role("table", name="Pending invitations, newest first")
    await expect(pending.get_by_role("row", name=new)).to_contain_text("Officer")
    await expect(pending.get_by_role("row", name=earlier)).to_be_visible()

    # Sent a moment ago: the reminder is refused kindly, with the time it can go.
    await page.get_by_role("button", name=f"Send a reminder to {new}").click()
    await expect(page.get_by_role("status")).to_contain_text("You can send a reminder again at")
    await expect(page.locator(".error-summary")).to_have_count(0)
    await check_page(page, "invite-pending")

    await page.get_by_role("link", name=f"Revoke the invitation to {earlier}").click()
    await expect(
        page.get_by_role("heading", name=f"Revoke the invitation to {earlier}?")
    ).to_be_visible()
    await check_page(page, "invite-revoke")
    await page.get_by_role("button", name="Revoke the invitation").click()
    await expect(page.get_by_role("status")).to_contain_text("The invitation was revoked")
    await expect(pending.get_by_role("row", name=earlier)).to_have_count(0)
    await expect(pending.get_by_role("row", name=new)).to_be_visible()
    r = await api.http.get(
        api.url("membership", f"/v1/departments/{admin.department_id}/invitations"),
        params={"status": "revoked"},
        headers=admin.headers,
    )
    assert [i["email"] for i in r.json()["items"]] == [earlier]


async def test_an_admin_adds_a_person_and_invites_instead_an_address_with_an_account(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    elsewhere = await api.create_department()  # its admin's address has an account
    await sign_in(page, console_url, admin.email)
    await page.goto(f"/departments/{admin.department_id}/users/new")
    await expect(page.get_by_role("heading", name="Add a user", level=1)).to_be_visible()

    await page.get_by_role("button", name="Add user").click()
    await expect(page.locator(".error-summary")).to_be_visible()
    await check_page(page, "add-user-error")

    email = random_email("added")
    await page.get_by_label("Full name").fill("Ada Added")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Role").select_option(label="Member")
    await page.get_by_role("button", name="Add user").click()
    notice = page.get_by_role("status")
    await expect(notice).to_contain_text(f"Ada Added was added to {admin.department_name}")
    await check_page(page, "add-user-added")
    await api.wait_mail(email)  # the credentials email

    # The same address again: already a member, with their record a click away.
    await page.get_by_label("Full name").fill("Ada Added")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Add user").click()
    await expect(
        page.get_by_role("heading", name=f"{email} is already a member of")
    ).to_be_visible()
    await expect(page.get_by_role("link", name="Open their record")).to_be_visible()

    # An address with an account elsewhere: cannot be added; invited in one click.
    await page.get_by_label("Full name").fill("Elsa Elsewhere")
    await page.get_by_label("Email address").fill(elsewhere.email)
    await page.get_by_label("Role").select_option(label="Officer")
    await page.get_by_role("button", name="Add user").click()
    await expect(
        page.get_by_role("heading", name=f"{elsewhere.email} already has an account")
    ).to_be_visible()
    await check_page(page, "add-user-exists")
    await page.get_by_role("button", name=f"Invite {elsewhere.email} instead").click()
    outcome = page.get_by_role("table", name="Outcome per address, in the order pasted")
    await expect(outcome.get_by_role("row", name=f"{elsewhere.email} Invited")).to_be_visible()
    pending = page.get_by_role("table", name="Pending invitations, newest first")
    await expect(pending.get_by_role("row", name=elsewhere.email)).to_contain_text("Officer")


async def test_invite_and_add_by_keyboard_alone(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    await sign_in(page, console_url, admin.email)
    invited = random_email("keys")
    await page.goto(f"/departments/{admin.department_id}/invitations")
    await tab_to(page, page.get_by_label("Email addresses"))
    await page.keyboard.type(invited)
    await tab_to(page, page.get_by_role("button", name="Send invitations"))
    await page.keyboard.press("Enter")
    outcome = page.get_by_role("table", name="Outcome per address, in the order pasted")
    await expect(outcome.get_by_role("row", name=f"{invited} Invited")).to_be_visible()

    added = random_email("keyed")
    await page.goto(f"/departments/{admin.department_id}/users/new")
    await tab_to(page, page.get_by_label("Full name"))
    await page.keyboard.type("Kay Board")
    await page.keyboard.press("Tab")
    await page.keyboard.type(added)
    await page.keyboard.press("Tab")  # the role: Member already chosen
    await tab_to(page, page.get_by_role("button", name="Add user"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Kay Board was added")


async def test_the_registration_link_is_created_copied_used_rotated_and_switched_off(
    page: Page, context: BrowserContext, console_url: str, api: Api, admin: Admin
) -> None:
    await sign_in(page, console_url, admin.email)
    link_page = f"/departments/{admin.department_id}/registration-link"
    await page.goto(link_page)
    await expect(
        page.get_by_text("The department has no working registration link.")
    ).to_be_visible()
    await page.get_by_label("Allowed email domains (optional)").fill("@Example.org, city.gov")
    await page.get_by_role("button", name="Create the link").click()
    await expect(page.get_by_role("status").first).to_contain_text("The link is ready")
    first = await page.get_by_label("Link to share").input_value()
    assert first.startswith(f"{console_url}/join/"), first
    await expect(page.get_by_text("example.org, city.gov")).to_be_visible()
    await page.get_by_role("button", name="Copy link").click()
    await expect(page.locator("#copy-status")).not_to_be_empty()
    await check_page(page, "registration-link")

    # Someone else, in a browser of their own, opens it: the join page.
    assert context.browser is not None
    stranger = await new_browser(context.browser, console_url)
    try:
        visitor = await stranger.new_page()
        await visitor.goto(first)
        await expect(visitor.get_by_role("heading", name="Join the department")).to_be_visible()

        await page.get_by_role("button", name="Rotate the link").click()
        await expect(page.get_by_role("status").first).to_contain_text("The old one no longer")
        second = await page.get_by_label("Link to share").input_value()
        assert second != first and second.startswith(f"{console_url}/join/")

        # The old link: refused when used, with the clear page.
        await visitor.goto(first)
        await register(visitor, random_email("late"))
        refused = visitor.get_by_role("heading", name="This link cannot be used")
        await expect(refused).to_be_visible()
        await visitor.goto(second)
        await expect(visitor.get_by_role("heading", name="Join the department")).to_be_visible()

        await page.get_by_role("button", name="Switch the link off").click()
        await expect(page.get_by_role("status").first).to_contain_text("switched off")
        await expect(
            page.get_by_text("The department has no working registration link.")
        ).to_be_visible()
        await visitor.goto(second)
        await register(visitor, random_email("later"))
        await expect(refused).to_be_visible()
    finally:
        await stranger.close()


async def test_a_member_is_not_allowed_on_the_pages_that_bring_people_in(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    member = await invited_person(api, admin, name="Max Member")
    await sign_in(page, console_url, member.email)
    for path in ("invitations", "users/new", "registration-link"):
        response = await page.goto(f"/departments/{admin.department_id}/{path}")
        assert response is not None and response.status == 403, path
        await expect(
            page.get_by_role("heading", name="You are not allowed to see this")
        ).to_be_visible()
    # A forged post is refused by membership itself.
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/invitations"),
        json={"emails": "x@example.org"},
        headers=member.headers,
    )
    assert r.status_code == 403
