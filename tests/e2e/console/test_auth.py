"""Signing in and out, the password pages, and what an expired session does."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.async_api import BrowserContext, Page, expect
from sqlalchemy.ext.asyncio import create_async_engine

from prodigy_users.identity.deps import SIGN_IN_BY_ADDRESS
from prodigy_users.runtime.throttle_rules import key_of
from tests.support import PASSWORD, Api, Keys, random_email, subject_has, wait_mail_matching

from .checks import check_page
from .conftest import NamedAdmin as Admin
from .pages import SignInPage, sign_in

pytestmark = pytest.mark.e2e


async def test_an_admin_signs_in_and_sees_the_department(
    page: Page, console_url: str, admin: Admin
) -> None:
    form = await SignInPage(page).open(console_url, f"/departments/{admin.department_id}")
    await check_page(page, "sign-in")
    await form.sign_in(admin.email)
    # The department's page sends an admin on to its users.
    await expect(page).to_have_url(f"{console_url}/departments/{admin.department_id}/users")
    await expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    # The department's name is on the page, and listed on the home page.
    await page.get_by_role("link", name="Your departments").click()
    await expect(page.get_by_role("heading", name="Your departments")).to_be_visible()
    await expect(page.get_by_role("link", name=admin.department_name)).to_be_visible()
    await check_page(page, "departments")


async def test_a_wrong_password_is_said_next_to_the_field(
    page: Page, console_url: str, admin: Admin
) -> None:
    form = await SignInPage(page).open(console_url)
    await form.sign_in(admin.email, "not the password at all")
    summary = page.get_by_role("alert")
    await expect(summary).to_contain_text("There is a problem")
    await expect(summary.get_by_role("link")).to_have_text(
        "Enter a correct email address and password."
    )
    await expect(page.get_by_label("Email address")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Email address")).to_have_value(admin.email)
    await expect(page).to_have_title("Error: Sign in \N{EN DASH} Prodigy Users")
    # The summary's link takes the keyboard to the field.
    await summary.get_by_role("link").click()
    await expect(page.get_by_label("Email address")).to_be_focused()
    await check_page(page, "sign-in-error")
    assert not [c for c in await page.context.cookies() if c["name"] == "prodigy_session"]


async def test_after_five_wrong_passwords_the_page_says_when_to_try_again(
    page: Page, console_url: str, admin: Admin, browser_address: str, controllable: Any
) -> None:
    form = await SignInPage(page).open(console_url)
    for _ in range(5):
        await form.sign_in(admin.email, "not the password at all")
        await expect(page.get_by_role("alert")).to_contain_text("Enter a correct email address")
    await form.sign_in(admin.email)  # the right password, during the lock
    summary = page.get_by_role("alert")
    await expect(summary).to_contain_text(re.compile(r"Too many attempts\. Try again in \d+ s"))
    await check_page(page, "sign-in-throttled")
    assert not [c for c in await page.context.cookies() if c["name"] == "prodigy_session"]
    # The console passed this browser's address on: identity counted the five
    # failures against it (not against the console's own address).
    engine = create_async_engine(controllable.database_url("identity"))
    try:
        async with engine.connect() as conn:
            attempts = await conn.scalar(
                sa.text("SELECT attempts FROM throttle_counts WHERE key = :key"),
                {"key": key_of(SIGN_IN_BY_ADDRESS.name, browser_address)},
            )
    finally:
        await engine.dispose()
    assert attempts == 5


async def test_signing_out_ends_the_session(
    page: Page, context: BrowserContext, console_url: str, admin: Admin
) -> None:
    await sign_in(page, console_url, admin.email)
    await page.goto(f"/departments/{admin.department_id}/users")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_have_text("You have signed out.")
    assert not [c for c in await context.cookies() if c["name"] == "prodigy_session"]
    # Back: the page is not kept (no-store) and asks to sign in again.
    await page.go_back()
    await expect(SignInPage(page).heading).to_be_visible()
    assert urlsplit(page.url).path == "/sign-in"


async def test_an_expired_session_signs_in_again_and_comes_back(
    page: Page, context: BrowserContext, console_url: str, admin: Admin, keys: Keys
) -> None:
    expired = keys.token(uuid.UUID(admin.account_id), ttl=timedelta(minutes=-5))
    await context.add_cookies(
        [{"name": "prodigy_session", "value": expired, "url": console_url, "httpOnly": True}]
    )
    wanted = f"/departments/{admin.department_id}/users?status=active"
    await page.goto(wanted)
    # Reporting answered 401: the console asks to sign in, then goes where we were going.
    form = SignInPage(page)
    await expect(form.heading).to_be_visible()
    await form.sign_in(admin.email)
    await expect(page).to_have_url(console_url + wanted)
    await expect(page.get_by_label("Status")).to_have_value("active")


async def test_sign_in_never_redirects_off_the_site(
    page: Page, console_url: str, admin: Admin
) -> None:
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        form = await SignInPage(page).open(console_url, evil)
        await form.sign_in(admin.email)
        await expect(page.get_by_role("heading", name="Your departments")).to_be_visible()
        assert urlsplit(page.url).netloc == urlsplit(console_url).netloc
        await page.get_by_role("button", name="Sign out").click()


async def test_forgot_password_answers_the_same_and_the_link_sets_a_password(
    page: Page, console_url: str, admin: Admin, api: Api
) -> None:
    # Unknown address first: the same answer as for a known one.
    await page.goto("/forgot-password")
    await check_page(page, "forgot-password")
    unknown = random_email("nobody")
    await page.get_by_label("Email address").fill(unknown)
    await page.get_by_role("button", name="Send me a link").click()
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    unknown_text = (await page.get_by_role("status").inner_text()).replace(unknown, "X")

    await page.goto("/forgot-password")
    await page.get_by_label("Email address").fill(admin.email)
    await page.get_by_role("button", name="Send me a link").click()
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    assert (await page.get_by_role("status").inner_text()).replace(admin.email, "X") == unknown_text
    await check_page(page, "forgot-password-sent")

    [mail] = await wait_mail_matching(api, admin.email, subject_has("reset"), what="reset mail")
    link = next(w for w in mail["text"].split() if "/set-password?token=" in w)
    assert link.startswith(console_url), link  # the emailed link lands on the console
    await page.goto(link)
    await check_page(page, "set-password")
    await page.get_by_label("New password").fill("short")
    await page.get_by_role("button", name="Set password").click()
    await expect(page.get_by_label("New password")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_role("alert")).to_contain_text("Password")
    await check_page(page, "set-password-error")
    await page.get_by_label("New password").fill("a brand new long passphrase")
    await page.get_by_role("button", name="Set password").click()
    await expect(page.get_by_role("heading", name="Your password is set")).to_be_visible()
    # The same link again: used, and the page says so.
    await page.goto(link)
    await page.get_by_label("New password").fill("another long passphrase")
    await page.get_by_role("button", name="Set password").click()
    await expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    await check_page(page, "set-password-used")
    await sign_in(page, console_url, admin.email, "a brand new long passphrase")
    assert PASSWORD != "a brand new long passphrase"
