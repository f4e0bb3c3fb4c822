"""The home page's "sign out everywhere": every token of the account is revoked (this
browser's session, other devices'), this session ends, and signing in again works."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.support import Api, bearer

from .checks import check_page
from .conftest import NamedAdmin as Admin
from .pages import SignInPage, sign_in

pytestmark = pytest.mark.e2e


async def _me(api: Api, token: str) -> int:
    r = await api.http.get(api.url("identity", "/v1/me"), headers=bearer(token))
    return r.status_code


async def test_sign_out_everywhere_ends_every_session(
    page: Page, console_url: str, admin: Admin, api: Api
) -> None:
    other_device = await api.login(admin.email)
    await sign_in(page, console_url, admin.email)
    await page.goto(f"{console_url}/")
    await expect(page.get_by_role("heading", name="Sign out everywhere")).to_be_visible()
    await check_page(page, "home-sign-out-everywhere")
    [session] = [c for c in await page.context.cookies() if c["name"] == "prodigy_session"]
    assert await _me(api, session["value"]) == 200

    await page.get_by_role("button", name="End all my sessions").click()

    await expect(SignInPage(page).heading).to_be_visible()
    assert not [c for c in await page.context.cookies() if c["name"] == "prodigy_session"]
    # The tokens are refused, not only forgotten by this browser.
    assert await _me(api, session["value"]) == 401
    assert await _me(api, other_device) == 401
    # Signing in again gives a session that works.
    await sign_in(page, console_url, admin.email)
    await page.goto(f"{console_url}/departments/{admin.department_id}/users")
    await expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()


async def test_sign_out_everywhere_refuses_a_form_without_its_csrf_token(
    page: Page, console_url: str, admin: Admin, api: Api
) -> None:
    await sign_in(page, console_url, admin.email)
    [session] = [c for c in await page.context.cookies() if c["name"] == "prodigy_session"]
    r = await page.request.post(f"{console_url}/sign-out-everywhere", form={})
    assert r.status == 403, await r.text()
    assert await _me(api, session["value"]) == 200
