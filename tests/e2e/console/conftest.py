"""Fixtures of the console's browser tests: the session stack's console, one Chromium
per session and a fresh browser context per test."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.support import Admin, Api, client_address

from .browser import ARGS, chromium_path, new_browser

# Pages wait on services that are eventually consistent (reporting); under the load of
# a whole suite on two cores a few seconds are not always enough.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def console_url(stack: Any) -> str:
    """The console's base URL (the session stack's, or ``console`` in PRODIGY_TEST_URLS)."""
    if stack is None:
        return str(json.loads(os.environ["PRODIGY_TEST_URLS"])["console"])
    return str(stack.url("console"))


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, for the whole session."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), args=ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def browser_address() -> str:
    """The address the test's browser comes from (the console trusts loopback as a
    proxy, and passes the address on: the services throttle per address)."""
    return client_address()


@pytest.fixture
async def context(
    browser: Browser, console_url: str, browser_address: str
) -> AsyncIterator[BrowserContext]:
    """A fresh browser (no cookies) for one test, from an address of its own."""
    ctx = await new_browser(browser, console_url, address=browser_address, accept_downloads=True)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    """A tab in the test's browser."""
    return await context.new_page()


@dataclass
class NamedAdmin(Admin):
    """An admin, with the name of their department (pages show it)."""

    department_name: str = ""


@pytest.fixture
async def admin(api: Api) -> NamedAdmin:
    """A new department and its signed-up admin (password ``tests.support.PASSWORD``)."""
    name = f"Station {uuid.uuid4().hex[:6]}"
    made = await api.create_department(name)
    return NamedAdmin(
        made.department_id, made.account_id, made.email, made.token, department_name=name
    )
