"""Bulk upload in the browser: the template, a CSV with mixed outcomes previewed (its
rows with problems), then started, followed to the end by the progress bar, its
results per row, and results.csv downloaded through the console (the same file
membership serves); the past uploads; a member is not allowed."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from playwright.async_api import FilePayload, Page, expect

from tests.e2e.import_support import csv_file, results
from tests.support import Api, invited_person

from .checks import check_page
from .conftest import NamedAdmin as Admin
from .pages import sign_in

pytestmark = pytest.mark.e2e

HEADER = ["Name", "Email", "Role", "Employee ID", "Groups"]
CSV = "text/csv"


def _file(api_admin: Admin, outsider: str, t: str) -> bytes:
    rows = [
        HEADER,
        ["Ana Lima", f"ana-{t}@example.org", "officer", "", f"Crew {t}"],  # 2 created
        ["Otto Outsider", outsider, "member", "", ""],  # 3 invited
        ["Me Myself", api_admin.email, "", "", ""],  # 4 already_member
        ["Ana Again", f"ana-{t}@example.org", "", "", ""],  # 5 duplicate_in_file
        ["Cy", "cy-at-example.org", "", "", ""],  # 6 invalid
        ["Dee", f"dee-{t}@example.org", "captain", "", ""],  # 7 invalid
    ]
    # More new people, so the upload runs long enough for its progress to show.
    rows += [[f"Crew Member {i}", f"crew{i}-{t}@example.org", "", "", ""] for i in range(20)]
    return csv_file(rows)


async def _counts(page: Page) -> dict[str, str]:
    terms = await page.locator(".counts dt").all_inner_texts()
    values = await page.locator(".counts dd").all_inner_texts()
    return dict(zip(terms, values, strict=True))


async def test_an_admin_previews_runs_and_downloads_the_results_of_a_mixed_csv(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    t = uuid.uuid4().hex[:6]
    elsewhere = await api.create_department()
    outsider = f"outsider-{t}@example.org"
    assert (await api.add_member(elsewhere, outsider, name="Otto Outsider")).status_code == 201
    data = _file(admin, outsider, t)
    upload_file: FilePayload = {"name": "staff.csv", "mimeType": CSV, "buffer": data}

    await sign_in(page, console_url, admin.email)
    await page.goto(f"/departments/{admin.department_id}/imports")
    await expect(page.get_by_role("heading", name="Bulk upload", level=1)).to_be_visible()
    await expect(page.get_by_text("No uploads yet.")).to_be_visible()
    await check_page(page, "bulk-upload")

    # The template: membership's, with the columns it reads.
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download the CSV template").click()
    template = await (await info.value).path()
    assert template.read_text(encoding="utf-8-sig").strip() == ",".join(HEADER)
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download the Excel (XLSX) template").click()
    assert (await info.value).suggested_filename == "users-template.xlsx"

    # No file: said next to the field.
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("#file-error")).to_contain_text("Choose a CSV or XLSX file")
    await expect(page).to_have_title(re.compile(r"^Error: Bulk upload"))

    # The preview: counts per outcome and only the rows with problems.
    await page.get_by_label("File", exact=True).set_input_files(upload_file)
    await page.get_by_role("button", name="Preview").click()
    await expect(page.get_by_role("heading", name="Preview of staff.csv")).to_be_visible()
    await expect(page.get_by_text("Preview finished: 26 of 26 rows done.")).to_be_visible(
        timeout=60_000
    )
    assert await _counts(page) == {
        "Added (new account)": "21",
        "Invited (had an account)": "1",
        "Already a member": "1",
        "Repeated in the file": "1",
        "Not valid": "2",
    }
    problems = page.get_by_role("table").locator("tbody").get_by_role("row")
    await expect(problems).to_have_count(3)
    await expect(problems.nth(0)).to_contain_text("same email as line 2")
    await expect(problems.nth(1)).to_contain_text("cy-at-example.org")
    await expect(problems.nth(2)).to_contain_text("unknown role 'captain'")
    await check_page(page, "bulk-upload-preview")
    # A preview changed nothing: the new address has no membership yet.
    assert (await api.report_users(admin)) is not None
    emails = {r["email"] for r in await api.report_users(admin)}
    assert f"ana-{t}@example.org" not in emails

    # Start it for real (the same file again), and follow it to the end.
    await page.get_by_label("The same file", exact=True).set_input_files(upload_file)
    await page.get_by_role("button", name="Start upload").click()
    await expect(page.get_by_role("heading", name="Upload of staff.csv")).to_be_visible()
    bar = page.get_by_role("progressbar")
    await expect(bar).to_be_visible()
    # No reload by the test: the polled fragment brings the finished page by itself.
    await expect(page.get_by_text("Upload finished: 26 of 26 rows done.")).to_be_visible(
        timeout=90_000
    )
    await expect(bar).to_have_attribute("value", "100")
    # The finished page polls no more; its fragment, asked again, asks for the page.
    await expect(page.locator("#progress")).not_to_have_attribute("hx-trigger", re.compile("."))
    fragment = await page.request.get(f"{page.url}/progress", headers={"HX-Request": "true"})
    assert fragment.status == 200 and fragment.headers.get("hx-refresh") == "true"
    assert (await _counts(page))["Added (new account)"] == "21"
    rows = page.get_by_role("table").locator("tbody").get_by_role("row")
    await expect(rows).to_have_count(26)
    await expect(rows.nth(0)).to_contain_text("Added (new account)")
    await expect(rows.nth(1)).to_contain_text("Invited (had an account)")
    await check_page(page, "bulk-upload-results")

    # results.csv through the console: exactly membership's.
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download results.csv").click()
    download = await info.value
    assert download.suggested_filename.endswith("-results.csv")
    got = list(csv.reader(io.StringIO((await download.path()).read_text(encoding="utf-8-sig"))))
    import_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert got == await results(api, admin, import_id)
    assert got[0] == ["line", *HEADER, "outcome", "reason"]
    assert [r[-2] for r in got[1:7]] == [
        "created",
        "invited",
        "already_member",
        "duplicate_in_file",
        "invalid",
        "invalid",
    ]

    # The past uploads: the run and its preview, newest first.
    await page.get_by_role("link", name="Back to bulk upload").click()
    past = page.get_by_role("table").locator("tbody").get_by_role("row")
    await expect(past).to_have_count(2)
    await expect(past.nth(0)).to_contain_text("Upload")
    await expect(past.nth(1)).to_contain_text("Preview")
    await expect(past.nth(0).get_by_role("link", name="staff.csv")).to_have_attribute(
        "href", f"/departments/{admin.department_id}/imports/{import_id}"
    )


async def test_a_file_membership_refuses_is_explained_next_to_the_field(
    page: Page, console_url: str, admin: Admin
) -> None:
    await sign_in(page, console_url, admin.email)
    await page.goto(f"/departments/{admin.department_id}/imports")
    no_email = csv_file([["Name", "Phone"], ["Ana", "123"]])
    await page.get_by_label("File", exact=True).set_input_files(
        {"name": "phones.csv", "mimeType": CSV, "buffer": no_email}
    )
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("#file-error")).to_contain_text("email")
    await expect(page.get_by_label("File", exact=True)).to_have_attribute("aria-invalid", "true")


async def test_a_member_is_not_allowed_on_the_bulk_upload_pages(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    member = await invited_person(api, admin, name="Mo Member")
    await sign_in(page, console_url, member.email)
    for path in ("imports", "imports/template.csv", "groups", "emails"):
        response = await page.goto(f"/departments/{admin.department_id}/{path}")
        assert response is not None and response.status == 403, path
        await expect(
            page.get_by_role("heading", name="You are not allowed to see this")
        ).to_be_visible()
