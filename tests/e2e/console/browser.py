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

from playwright.async_api import ViewportSize

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
