"""What every page of the console is checked for: axe-core (no serious or critical
violation) and screenshots at desktop and phone width (test artefacts)."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

from .browser import DESKTOP, PHONE, SCREENSHOTS

_axe = Axe()
BLOCKING = ("serious", "critical")


def _describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [", ".join(n.get("target", [])) for n in v.get("nodes", [])][:3]
        lines.append(f"{v['impact']}: {v['id']} ({v['help']}) at {targets}")
    return "\n".join(lines)


async def assert_accessible(page: Page) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    results = await _axe.run(page)
    violations = [v for v in results.response["violations"] if v.get("impact") in BLOCKING]
    assert not violations, f"axe on {page.url}:\n{_describe(violations)}"


async def screenshots(page: Page, name: str) -> None:
    """The page at desktop and phone width, as ``<name>-desktop.png`` / ``-phone.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=SCREENSHOTS / f"{name}-phone.png", full_page=True)
    await page.set_viewport_size(DESKTOP)


async def check_page(page: Page, name: str) -> None:
    """axe at both widths (the phone layout is a different layout) and the screenshots."""
    await assert_accessible(page)
    await page.set_viewport_size(PHONE)
    await assert_accessible(page)
    await page.set_viewport_size(DESKTOP)
    await screenshots(page, name)
