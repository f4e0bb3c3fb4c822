"""Page objects of the console, found the way people find things: by role and label."""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.async_api import Locator, Page, expect

from tests.support import PASSWORD, Api, subject_has, wait_mail_matching


@dataclass
class SignInPage:
    """``/sign-in``."""

    page: Page

    async def open(self, base: str, next_path: str | None = None) -> SignInPage:
        """Go to the sign-in page (coming back to ``next_path``)."""
        query = f"?next={next_path}" if next_path else ""
        await self.page.goto(f"{base}/sign-in{query}")
        return self

    async def sign_in(self, email: str, password: str = PASSWORD) -> None:
        """Fill the form and send it."""
        await self.page.get_by_label("Email address").fill(email)
        await self.page.get_by_label("Password").fill(password)
        await self.page.get_by_role("button", name="Sign in").click()

    @property
    def heading(self) -> Locator:
        """The page's heading."""
        return self.page.get_by_role("heading", name="Sign in", level=1)


async def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    """The shared login helper: sign in and wait until the console has let us in."""
    form = await SignInPage(page).open(base)
    await form.sign_in(email, password)
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@dataclass
class UsersPage:
    """``/departments/{dept}/users``."""

    page: Page

    @property
    def table(self) -> Locator:
        """The users table."""
        return self.page.get_by_role("table")

    @property
    def status(self) -> Locator:
        """The line that says which rows are shown."""
        return self.page.get_by_role("status")

    async def open(self, base: str, dept: str, query: str = "") -> UsersPage:
        """Go to the department's users page."""
        await self.page.goto(f"{base}/departments/{dept}/users{query}")
        await expect(self.page.get_by_role("heading", name="Users", level=1)).to_be_visible()
        return self

    async def names(self) -> list[str]:
        """The names in the table, top to bottom (the row headers)."""
        if await self.table.count() == 0:
            return []
        cells = self.table.get_by_role("rowheader")
        return [t.strip() for t in await cells.all_inner_texts()]

    async def emails(self) -> list[str]:
        """The emails in the table, top to bottom."""
        if await self.table.count() == 0:
            return []
        rows = self.table.locator("tbody").get_by_role("row")
        out = []
        for row in await rows.all():
            out.append((await row.get_by_role("cell").nth(0).inner_text()).strip())
        return out

    async def sort_by(self, heading: str) -> None:
        """Click a column heading's sort link."""
        header = self.table.get_by_role("columnheader", name=re.compile(rf"^{heading}"))
        await header.get_by_role("link").click()


async def confirmation_link(api: Api, email: str, *, count: int = 1) -> str:
    """The link of the ``count``-th confirmation email sent to ``email`` (waited for)."""
    mails = await wait_mail_matching(
        api, email, subject_has("confirm your email"), count=count, what="confirmation"
    )
    text: str = mails[count - 1]["text"]
    return next(word for word in text.split() if "/confirm-email?token=" in word)


async def confirm(page: Page, password: str = PASSWORD) -> None:
    """On the confirmation link's page: enter the password and confirm."""
    await expect(page.get_by_role("heading", name="Confirm your email")).to_be_visible()
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Confirm my email").click()


@dataclass
class RecordPage:
    """``/departments/{dept}/users/{account}``: one person's record and its actions."""

    page: Page

    async def open(self, base: str, dept: str, account: str) -> RecordPage:
        """Go to the record."""
        await self.page.goto(f"{base}/departments/{dept}/users/{account}")
        return self

    @property
    def notice(self) -> Locator:
        """What the last action did."""
        return self.page.locator("#record").get_by_role("status")

    def shown(self, term: str) -> Locator:
        """The value of one line of the profile ("Role", "Employee ID", "Groups"...)."""
        return (
            self.page.locator(".profile div")
            .filter(has=self.page.get_by_role("term").filter(has_text=re.compile(f"^{term}$")))
            .get_by_role("definition")
        )

    @property
    def history(self) -> Locator:
        """The membership's history, newest first."""
        return (
            self.page.get_by_role("list")
            .filter(has=self.page.locator("time"))
            .get_by_role("listitem")
        )

    async def change_role(self, role: str) -> None:
        """Pick a role and send it."""
        await self.page.get_by_role("combobox", name="Role").select_option(label=role)
        await self.page.get_by_role("button", name="Change role").click()

    @property
    def employee_id(self) -> Locator:
        """The employee ID's field (its section is labelled "Employee ID" too)."""
        return self.page.get_by_role("textbox", name="Employee ID")

    async def set_employee_id(self, value: str) -> None:
        """Type an employee ID and save it."""
        await self.employee_id.fill(value)
        await self.page.get_by_role("button", name="Save employee ID").click()

    async def add_to_group(self, group: str) -> None:
        """Put the person in a group."""
        await self.page.get_by_label("Add to a group").select_option(label=group)
        await self.page.get_by_role("button", name="Add to group").click()
