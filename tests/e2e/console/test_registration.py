"""Registering through a link proves the address before anything takes effect: "check
your email", the confirmation link's page (password asked), joined and signed in;
signing in before confirming is refused with a way to get the link again; someone
without the mailbox gets nothing; a bad confirmation link gets a clear page."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Page, expect

from tests.support import PASSWORD, Admin, Api, random_email, subject_has, wait_mail_matching

from .checks import check_page
from .conftest import NamedAdmin
from .pages import SignInPage, confirm, confirmation_link

pytestmark = pytest.mark.e2e


async def _join_link(api: Api, admin: Admin, **options: object) -> str:
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/registration-link"),
        json={"role": "officer", **options},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    url: str = r.json()["url"]
    return url


async def _register(page: Page, name: str, email: str, password: str = PASSWORD) -> None:
    form = page.get_by_role("region", name="Create my account")
    await form.get_by_label("Full name").fill(name)
    await form.get_by_label("Email address").fill(email)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name="Create my account").click()


async def test_registering_then_confirming_from_the_email_joins_and_signs_in(
    page: Page, console_url: str, api: Api, admin: NamedAdmin
) -> None:
    link = await _join_link(api, admin)
    email = random_email("joiner")
    await page.goto(link)
    await _register(page, "Jo Joiner", email)

    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text(email)
    await check_page(page, "registration-check-your-email")

    # Signing in before confirming: refused, with the reason and the link again.
    confirmation = await confirmation_link(api, email)
    form = await SignInPage(page).open(console_url)
    await form.sign_in(email)
    await expect(page.get_by_role("alert")).to_contain_text("Confirm your email first")
    await expect(page.get_by_role("alert")).to_contain_text(email)
    await check_page(page, "sign-in-unconfirmed")
    await page.get_by_role("button", name="Send the link again").click()
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text(email)
    again = await confirmation_link(api, email, count=2)
    assert again != confirmation, "a new link, the old one retired"

    # The confirmation link's page: nothing happens until the password is entered.
    response = await page.goto(again)
    assert response is not None and response.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in response.headers["cache-control"]
    await check_page(page, "confirm-email")
    await confirm(page, "not the password at all")
    await expect(page.get_by_role("alert")).to_contain_text("Enter the password you chose")
    await confirm(page)

    await expect(page.get_by_role("heading", name="Your email is confirmed")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text(
        f"You have joined {admin.department_name}"
    )
    await check_page(page, "email-confirmed")
    await page.get_by_role("link", name=f"Go to {admin.department_name}").click()
    await expect(page).to_have_url(re.compile(rf"/departments/{admin.department_id}(/|$)"))
    await page.get_by_role("button", name="Sign out").click()
    # Signing in works from now on; the old link says it cannot be used.
    await (await SignInPage(page).open(console_url)).sign_in(email)
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await page.goto(confirmation)
    await confirm(page)
    await expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    await check_page(page, "confirm-email-not-valid")
    row = await api.wait_reported(admin, email)
    assert (row["name"], row["role"]) == ("Jo Joiner", "officer")


async def test_someone_without_the_mailbox_gets_nothing(
    page: Page, console_url: str, api: Api, admin: NamedAdmin
) -> None:
    domain = f"acme-{uuid.uuid4().hex[:8]}.example"
    link = await _join_link(api, admin, allowed_domains=[domain])
    cfo = f"cfo@{domain}"
    attacker = "the attacker's own passphrase"

    await page.goto(link)
    await _register(page, "C F O", cfo, attacker)
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    # The attacker cannot sign in with the password they chose.
    confirmation = await confirmation_link(api, cfo)
    await page.context.clear_cookies()
    await (await SignInPage(page).open(console_url)).sign_in(cfo, attacker)
    await expect(page.get_by_role("alert")).to_contain_text("Confirm your email first")
    await expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

    # The real owner got the email; opening it and using their own password confirms
    # nothing (the registration is not theirs), and nobody has joined.
    [mail] = await wait_mail_matching(api, cfo, subject_has("confirm your email"))
    assert mail["to"] == [cfo] and "ignore this email" in mail["text"]
    await page.goto(confirmation)
    await confirm(page, "the cfo's own passphrase")
    await expect(page.get_by_role("alert")).to_contain_text("Enter the password you chose")
    fence = random_email("fence")
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_reported(admin, fence)
    assert cfo not in [u["email"] for u in await api.report_users(admin)]
    r = await api.http.post(
        api.url("identity", "/v1/auth/token"), json={"email": cfo, "password": attacker}
    )
    assert r.status_code == 403, r.text


async def test_an_address_with_an_account_gets_the_same_page_and_its_owner_an_email(
    page: Page, console_url: str, api: Api, admin: NamedAdmin
) -> None:
    link = await _join_link(api, admin)
    owner = await api.create_department()
    newcomer = random_email("newcomer")

    await page.goto(link)
    await _register(page, "Not The Owner", owner.email, "some other long passphrase")
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    existing_page = await page.get_by_role("main").inner_text()
    await page.goto(link)
    await _register(page, "New Comer", newcomer)
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    new_page = await page.get_by_role("main").inner_text()
    assert existing_page.replace(owner.email, "X") == new_page.replace(newcomer, "X")

    [notice] = await wait_mail_matching(
        api, owner.email, subject_has("someone tried to register", admin.department_name)
    )
    emailed = next(w for w in notice["text"].split() if "/join/" in w)
    assert emailed == link
    await page.goto(emailed)
    form = page.get_by_role("region", name="Sign in to accept")
    await form.get_by_label("Email address").fill(owner.email)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name=re.compile("^Sign in and")).click()
    await expect(page).to_have_url(
        re.compile(rf"/departments/{admin.department_id}\?joined=officer")
    )


async def test_a_confirmation_link_that_was_never_issued_gets_a_clear_page(page: Page) -> None:
    await page.goto("/confirm-email?token=never-issued")
    await confirm(page)
    await expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    await expect(page.get_by_text("This link is not valid.")).to_be_visible()
