"""CSRF, cookies, headers and the Content-Security-Policy, seen from the browser."""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Page, expect

from tests.support import Admin

from .browser import new_browser
from .checks import check_page
from .pages import SignInPage, sign_in

pytestmark = pytest.mark.e2e


async def _session_cookie(context: BrowserContext) -> str | None:
    found = [c for c in await context.cookies() if c["name"] == "prodigy_session"]
    return found[0]["value"] if found else None


async def test_a_form_without_its_csrf_token_is_refused(
    page: Page, context: BrowserContext, console_url: str, admin: Admin
) -> None:
    await sign_in(page, console_url, admin.email)
    # The browser's own cookies go along (as with a forged cross-site form), the token not.
    answer = await page.request.post(f"{console_url}/sign-out", form={"next": "/"})
    assert answer.status == 403
    assert "The form could not be sent" in await answer.text()
    assert await _session_cookie(context) is not None, "refused: nothing changed"
    # A token from another browser does not do either.
    assert context.browser is not None
    other = await new_browser(context.browser, console_url)
    try:
        stranger = await other.new_page()
        await stranger.goto(f"{console_url}/sign-in")
        token = await stranger.locator("input[name=csrf_token]").first.input_value()
    finally:
        await other.close()
    answer = await page.request.post(f"{console_url}/sign-out", form={"csrf_token": token})
    assert answer.status == 403
    # The page says so, in the console's layout.
    await page.goto("/")
    await page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'forged')"
    )
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="The form could not be sent")).to_be_visible()
    await check_page(page, "csrf-refused")
    # htmx sends the token in a header (the layout's hx-headers): that is accepted.
    await page.goto("/")
    header = await page.locator("body").get_attribute("hx-headers")
    assert header is not None
    token = json.loads(header)["X-CSRF-Token"]
    answer = await page.request.post(
        f"{console_url}/sign-out", headers={"X-CSRF-Token": token}, max_redirects=0
    )
    assert answer.status == 303 and answer.headers["location"] == "/sign-in?signed_out=true"
    assert await _session_cookie(context) is None


async def test_sign_in_itself_needs_the_token(page: Page, console_url: str, admin: Admin) -> None:
    answer = await page.request.post(
        f"{console_url}/sign-in", form={"email": admin.email, "password": "x"}
    )
    assert answer.status == 403


async def test_cookies_are_http_only_and_strict_and_the_token_never_in_the_page(
    page: Page, context: BrowserContext, console_url: str, admin: Admin
) -> None:
    await sign_in(page, console_url, admin.email)
    cookies = {c["name"]: c for c in await context.cookies()}
    for name in ("prodigy_session", "prodigy_sid"):
        assert cookies[name]["httpOnly"] is True, name
        assert cookies[name]["sameSite"] == "Strict", name
        assert cookies[name]["path"] == "/", name
        assert cookies[name]["secure"] is False, name  # plain HTTP here; a setting over HTTPS
    token = cookies["prodigy_session"]["value"]
    await page.goto(f"/departments/{admin.department_id}/users")
    assert token not in await page.content()
    assert token not in page.url
    assert await page.evaluate("document.cookie") == ""  # no script can read any of them


async def test_security_headers_and_a_csp_that_htmx_keeps(
    page: Page, console_url: str, admin: Admin
) -> None:
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            violations.append(message.text)

    page.on("console", on_console)
    response = await page.goto("/sign-in")
    assert response is not None
    headers = await response.all_headers()
    csp = headers["content-security-policy"]
    for directive in (
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "default-src 'none'",
        "form-action 'self'",
    ):
        assert directive in csp, (directive, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    link_page = await page.goto("/invitations/some-token")
    assert link_page is not None
    assert (await link_page.all_headers())["referrer-policy"] == "no-referrer"
    script = await page.request.get(f"{console_url}/static/vendor/htmx-2.0.11.min.js")
    assert script.status == 200 and "public" in script.headers["cache-control"]

    # Filtering swaps the table through htmx without breaking the policy.
    await SignInPage(page).open(console_url, f"/departments/{admin.department_id}/users")
    await SignInPage(page).sign_in(admin.email)
    await page.get_by_label("Status").select_option("active")
    await expect(page).to_have_url(re.compile(r"status=active"))
    await page.get_by_label("Status").select_option("inactive")
    await expect(page.get_by_role("status")).to_contain_text("No users match")
    assert violations == []


async def test_unknown_pages_and_service_refusals_are_pages_not_json(
    page: Page, console_url: str, admin: Admin
) -> None:
    response = await page.goto("/no/such/page")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    await sign_in(page, console_url, admin.email)
    response = await page.goto("/departments/not-a-uuid/users")
    assert response is not None and response.status == 404
    await check_page(page, "not-found")
    response = await page.goto("/departments/00000000-0000-4000-8000-000000000000/users")
    assert response is not None and response.status in (403, 404)
    assert "{" not in await page.get_by_role("main").inner_text()
