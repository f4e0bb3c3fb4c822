"""The pages people land on from their emails: accept an invitation, join with the
department's link; bad, used, revoked and rotated links; already a member."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Page, expect

from tests.support import (
    PASSWORD,
    Admin,
    Api,
    invite_ok,
    random_email,
    subject_has,
    wait_mail_matching,
    wait_row,
)

from .checks import check_page
from .pages import confirm, confirmation_link, sign_in

pytestmark = pytest.mark.e2e


async def _emailed_link(api: Api, email: str) -> str:
    [mail] = await wait_mail_matching(
        api, email, lambda m: "/invitations/" in m["text"], what="invitation"
    )
    text: str = mail["text"]
    return next(word for word in text.split() if "/invitations/" in word)


async def _invitation_link(api: Api, admin: Admin, console_url: str) -> tuple[str, str]:
    email = random_email("invitee")
    [result] = await invite_ok(api, admin, [email])
    assert result["outcome"] == "invited", result
    link = await _emailed_link(api, email)
    assert link.startswith(f"{console_url}/invitations/"), link  # the console serves it
    return email, link


async def _register(page: Page, name: str, email: str, password: str = PASSWORD) -> None:
    form = page.get_by_role("region", name="Create my account")
    await form.get_by_label("Full name").fill(name)
    await form.get_by_label("Email address").fill(email)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name="Create my account").click()


async def _sign_in_to_accept(page: Page, email: str, password: str = PASSWORD) -> None:
    form = page.get_by_role("region", name="Sign in to accept")
    await form.get_by_label("Email address").fill(email)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name=re.compile("^Sign in and")).click()


async def _joined(page: Page, admin: Admin, role: str = "member") -> None:
    await expect(page).to_have_url(
        re.compile(rf"/departments/{admin.department_id}\?joined={role}")
    )
    await expect(page.get_by_role("status")).to_contain_text("You have joined")
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


async def test_a_new_person_accepts_from_the_emailed_link(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    email, link = await _invitation_link(api, admin, console_url)
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Accept your invitation")).to_be_visible()
    await check_page(page, "invitation")
    # A weak password: membership's answer, next to the field.
    await _register(page, "Ivy Invitee", email, "short")
    form = page.get_by_role("region", name="Create my account")
    await expect(form.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    await expect(form.get_by_role("alert")).to_contain_text("Password")
    await expect(form.get_by_label("Full name")).to_have_value("Ivy Invitee")
    await check_page(page, "invitation-error")
    await _register(page, "Ivy Invitee", email)
    await _joined(page, admin)
    await check_page(page, "joined")
    row = await wait_row(
        api, admin, await _account_of(api, email), lambda r: r is not None, what="the new member"
    )
    assert row is not None and row["email"] == email
    # The same link again: used.
    await page.goto(link)
    await _register(page, "Ivy Again", random_email("again"))
    await expect(page.get_by_role("heading", name="This invitation cannot be used")).to_be_visible()
    await expect(page.get_by_text("already been used")).to_be_visible()
    await check_page(page, "invitation-used")


async def _account_of(api: Api, email: str) -> str:
    token = await api.login(email)
    r = await api.http.get(
        api.url("identity", "/v1/me"), headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["account_id"])


async def test_an_existing_account_accepts_under_another_email(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    elsewhere = await api.create_department()  # someone with an account and a password
    _, link = await _invitation_link(api, admin, console_url)
    await page.goto(link)
    await _sign_in_to_accept(page, elsewhere.email, "wrong password entirely")
    form = page.get_by_role("region", name="Sign in to accept")
    await expect(form.get_by_role("alert")).to_contain_text("Enter a correct email address")
    await _sign_in_to_accept(page, elsewhere.email)
    await _joined(page, admin)
    await wait_row(
        api, admin, elsewhere.account_id, lambda r: r is not None, what="the accepting account"
    )


async def test_a_signed_in_member_is_told_they_are_already_a_member(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    _, link = await _invitation_link(api, admin, console_url)
    await sign_in(page, console_url, admin.email)
    await page.goto(link)
    await expect(page.get_by_role("region", name=re.compile("^Accept as"))).to_contain_text(
        admin.email
    )
    await page.get_by_role("button", name="Accept the invitation").click()
    await expect(page.get_by_role("heading", name="You are already a member")).to_be_visible()
    await check_page(page, "already-member")


async def test_registering_with_an_address_that_has_an_account_shows_check_your_email(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    _, link = await _invitation_link(api, admin, console_url)
    other = await api.create_department()
    await page.goto(link)
    await _register(page, "Someone", other.email)
    # The page says what it says for any address: nothing tells whether one has an account.
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text(other.email)
    # The owner is emailed the invitation's own link, and signs in there to accept.
    [notice] = await wait_mail_matching(
        api, other.email, subject_has("someone tried to register"), what="sign-in notice"
    )
    emailed = next(w for w in notice["text"].split() if "/invitations/" in w)
    assert emailed == link
    await page.goto(emailed)
    await _sign_in_to_accept(page, other.email)
    await _joined(page, admin)


async def test_bad_and_revoked_invitation_links_get_a_clear_page(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    await page.goto(f"/invitations/{uuid.uuid4().hex}")
    await _register(page, "Nobody", random_email("nobody"))
    await expect(page.get_by_role("heading", name="This invitation cannot be used")).to_be_visible()
    await expect(page.get_by_text("This invitation link is not valid.")).to_be_visible()
    await check_page(page, "invitation-not-valid")

    email, link = await _invitation_link(api, admin, console_url)
    [pending] = [
        i
        for i in (
            await api.http.get(
                api.url("membership", f"/v1/departments/{admin.department_id}/invitations"),
                headers=admin.headers,
            )
        ).json()["items"]
        if i["email"] == email
    ]
    r = await api.http.delete(
        api.url(
            "membership",
            f"/v1/departments/{admin.department_id}/invitations/{pending['invitation_id']}",
        ),
        headers=admin.headers,
    )
    assert r.status_code == 204, r.text
    await page.goto(link)
    await _register(page, "Revoked", email)
    await expect(page.get_by_text("withdrawn by the department")).to_be_visible()


async def _registration_link(api: Api, admin: Admin) -> str:
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/registration-link"),
        json={"role": "member"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    url: str = r.json()["url"]
    return url


async def test_joining_with_the_department_link_and_a_rotated_one(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    link = await _registration_link(api, admin)
    assert link.startswith(f"{console_url}/join/"), link
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Join the department")).to_be_visible()
    await check_page(page, "join")
    joiner = random_email("joiner")
    await _register(page, "Jo Joiner", joiner)
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    await page.goto(await confirmation_link(api, joiner))
    await confirm(page)
    await expect(page.get_by_role("status")).to_contain_text("You have joined")

    newer = await _registration_link(api, admin)  # the old link stops working
    assert newer != link
    context = page.context
    await context.clear_cookies()
    await page.goto(link)
    await _register(page, "Late Joiner", random_email("late"))
    await expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    await expect(page.get_by_text("This registration link is not valid")).to_be_visible()
    await check_page(page, "join-not-valid")

    # Switched off: the current link stops working too.
    r = await api.http.delete(
        api.url("membership", f"/v1/departments/{admin.department_id}/registration-link"),
        headers=admin.headers,
    )
    assert r.status_code == 204, r.text
    await page.goto(newer)
    elsewhere = await api.create_department()
    await _sign_in_to_accept(page, elsewhere.email)
    await expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
