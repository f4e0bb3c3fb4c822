"""Names and login emails in the browser: "My account" (from the home page) changes the
person's name and, with the link sent to the new address, their login email; an admin
corrects a member's name on the member's record. Every page passes axe at desktop and
phone width, its error states too."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.support import Api, invited_person, random_email, subject_has, wait_mail_matching

from .checks import check_page
from .conftest import NamedAdmin as Admin
from .pages import RecordPage, sign_in

pytestmark = pytest.mark.e2e


async def test_a_person_changes_their_name_and_login_email_on_my_account(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    person = await invited_person(api, admin, name="Lena Lyma")
    await sign_in(page, console_url, person.email)
    await page.get_by_role("link", name="My account").click()
    await expect(page.get_by_role("heading", name="My account", level=1)).to_be_visible()
    await expect(page.get_by_text(person.email).first).to_be_visible()
    await check_page(page, "my-account")

    # A blank name is refused next to the field.
    await page.get_by_label("Full name").fill("   ")
    await page.get_by_role("button", name="Save my name").click()
    await expect(page).to_have_title(re.compile(r"^Error: "))
    await expect(page.locator("#name-error")).to_be_visible()
    await check_page(page, "my-account-name-error")

    await page.get_by_label("Full name").fill("Lena Lima")
    await page.get_by_role("button", name="Save my name").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Your name is now Lena Lima. It is your account's, so every department"
    )
    me = await api.http.get(api.url("identity", "/v1/me"), headers=person.headers)
    assert me.json()["name"] == "Lena Lima"

    # A wrong current password is refused next to its field; nothing is sent.
    new = random_email("lena-new")
    await page.get_by_label("New login email").fill(new)
    await page.get_by_label("Current password").fill("not my password")
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.locator("#password-error")).to_be_visible()
    await check_page(page, "my-account-password-error")
    assert await api.mails(new) == []

    await page.get_by_label("New login email").fill(new)
    await page.get_by_label("Current password").fill("correct horse battery staple")
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("status")).to_contain_text(f"We sent a link to {new}")

    [mail] = await wait_mail_matching(api, new, subject_has("confirm", "login email"))
    link = next(word for word in mail["text"].split() if "/email-change?token=" in word)
    path = link[link.index("/email-change") :]
    await page.goto(console_url + path)
    await expect(
        page.get_by_role("heading", name="Confirm your new login email", level=1)
    ).to_be_visible()
    await check_page(page, "email-change")
    await page.get_by_role("button", name="Make it my login email").click()
    await expect(
        page.get_by_role("heading", name="Your login email has changed", level=1)
    ).to_be_visible()
    await expect(page.get_by_text(new)).to_be_visible()
    await check_page(page, "email-changed")

    # The link works once.
    await page.goto(console_url + path)
    await page.get_by_role("button", name="Make it my login email").click()
    await expect(
        page.get_by_role("heading", name="This link cannot be used", level=1)
    ).to_be_visible()
    await check_page(page, "email-change-refused")

    await wait_mail_matching(api, person.email, subject_has("login email", "changed"))
    assert (await api.login(new)) != ""


async def test_an_admin_corrects_a_members_name_on_their_record(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    person = await invited_person(api, admin, name="Omar Typo")
    await sign_in(page, console_url, admin.email)
    record = await RecordPage(page).open(console_url, admin.department_id, person.account_id)
    await expect(page.get_by_role("heading", name="Omar Typo", level=1)).to_be_visible()

    name = page.get_by_role("textbox", name="Full name")
    await name.fill("")
    await page.get_by_role("button", name="Save name").click()
    await expect(page.locator("#name-error")).to_be_visible()
    await check_page(page, "record-name-error")

    await name.fill("Omar Tahir")
    await page.get_by_role("button", name="Save name").click()
    await expect(record.notice).to_contain_text(
        "Name changed to Omar Tahir. It is their account's name, so every department"
    )
    await expect(page.get_by_role("heading", name="Omar Tahir", level=1)).to_be_visible()
    await check_page(page, "record-name-changed")
    me = await api.http.get(api.url("identity", "/v1/me"), headers=person.headers)
    assert me.json()["name"] in ("Omar Tahir", "Omar Typo")  # identity follows within seconds


async def test_my_account_needs_a_signed_in_person(page: Page) -> None:
    await page.goto("/account")
    await expect(page).to_have_url(re.compile(r"/sign-in"))


async def test_a_person_adds_and_removes_an_address_on_my_account(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    person = await invited_person(api, admin, name="Tina Cruz")
    await sign_in(page, console_url, person.email)
    await page.goto(console_url + "/account")
    addresses = page.get_by_role("region", name="Your addresses")
    await expect(addresses.get_by_text(f"{person.email} (login email)")).to_be_visible()
    await expect(addresses.get_by_role("button", name=f"Remove {person.email}")).to_have_count(0)

    # The login email is already hers: refused next to the field.
    await page.get_by_label("Address to add").fill(person.email)
    await page.get_by_role("button", name="Add the address").click()
    await expect(page.locator("#address-email-error")).to_be_visible()
    await check_page(page, "my-account-address-error")

    work = random_email("tina-work")
    await page.get_by_label("Address to add").fill(work)
    await page.get_by_role("button", name="Add the address").click()
    await expect(page.get_by_role("status")).to_contain_text(f"We sent a link to {work}")

    [mail] = await wait_mail_matching(api, work, subject_has("confirm", "address"))
    link = next(word for word in mail["text"].split() if "/address-confirmation?token=" in word)
    path = link[link.index("/address-confirmation") :]
    await page.goto(console_url + path)
    heading = page.get_by_role("heading", name="Add this address to your account", level=1)
    await expect(heading).to_be_visible()
    await check_page(page, "address-confirmation")
    await page.get_by_role("button", name="Add it to my account").click()
    await expect(
        page.get_by_role("heading", name="The address is now yours", level=1)
    ).to_be_visible()
    await check_page(page, "address-linked")

    # The link works once.
    await page.goto(console_url + path)
    await page.get_by_role("button", name="Add it to my account").click()
    await expect(
        page.get_by_role("heading", name="This link cannot be used", level=1)
    ).to_be_visible()
    await check_page(page, "address-refused")

    await page.goto(console_url + "/account")
    await expect(addresses.get_by_text(work)).to_be_visible()
    await check_page(page, "my-account-addresses")
    await addresses.get_by_role("button", name=f"Remove {work}").click()
    await expect(page.get_by_role("status")).to_contain_text(
        f"{work} is no longer linked to your account"
    )
    await expect(addresses.get_by_text(work)).to_have_count(0)
    r = await api.http.get(api.url("identity", "/v1/me/addresses"), headers=person.headers)
    assert [a["email"] for a in r.json()["items"]] == [person.email]
