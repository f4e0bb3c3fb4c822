"""The browser the console's tests drive: Debian's Chromium through Playwright.

Playwright's own browser download is not reachable from these machines (and CI
installs Debian's ``chromium`` itself: see the README's test command), so the
tests launch ``/usr/bin/chromium`` (or ``$PRODIGY_CHROMIUM``). One browser per
session; each test gets its own context (cookies, storage), so tests never share
a session.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, ViewportSize

from tests.support import client_address

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"


def chromium_path() -> str:
    """The system Chromium; an error that says how to install it if there is none."""
    explicit = os.environ.get("PRODIGY_CHROMIUM")
    candidates = [explicit] if explicit else ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    raise RuntimeError(
        "the console's browser tests need Chromium: `apt-get install -y chromium` "
        "(the README's test command does it), or set PRODIGY_CHROMIUM"
    )


async def new_browser(
    browser: Browser, console_url: str, *, address: str | None = None, **options: Any
) -> BrowserContext:
    """A browser of someone's own (no cookies, no storage) on the console, from a client
    address of its own (``address``, or a new one): the console passes it on and the
    services throttle per address, so no test uses up another's budget. ``options``:
    Playwright's (``java_script_enabled``, ``accept_downloads``...)."""
    return await browser.new_context(
        viewport=DESKTOP,
        base_url=console_url,
        locale="en-GB",
        extra_http_headers={"X-Forwarded-For": address or client_address()},
        **options,
    )
