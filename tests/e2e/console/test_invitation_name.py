"""An invitation pasted as ``Name <email>``: its link's page fills the registration form
with the invited address and that name."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.support import Api, invitation_token, invite_ok, random_email

from .checks import assert_accessible
from .conftest import NamedAdmin as Admin

pytestmark = pytest.mark.e2e


async def test_the_invitation_page_offers_the_pasted_name(
    page: Page, api: Api, admin: Admin
) -> None:
    email = random_email("named")
    [result] = await invite_ok(api, admin, f"Sam Two <{email}>")
    assert result["outcome"] == "invited", result
    [mail] = await api.wait_mail(email)

    await page.goto(f"/invitations/{invitation_token(mail)}")

    await expect(page.get_by_label("Full name")).to_have_value("Sam Two")
    await expect(page.get_by_label("Email address").first).to_have_value(email)
    await assert_accessible(page)
    # A link that is not an invitation's gets an empty form, and the answer says why.
    await page.goto(f"/invitations/{invitation_token(mail)}x")
    await expect(page.get_by_label("Full name")).to_have_value("")
