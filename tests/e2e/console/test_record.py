"""The individual record in the browser: an admin changes role, employee ID, groups and
status, sends a password reset, removes the person and has them back; the transcript's
certificates download as PDFs. Every answer is the services': the page shows what
membership answered, and reporting's copy catches up (waited for by reloading, never
by sleeping)."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, BrowserContext, Page, expect
from pypdf import PdfReader

from prodigy_users.contracts.envelope import wrap
from prodigy_users.contracts.topics import TRAINING_EVENTS
from prodigy_users.contracts.training import CertificateRevoked, CourseCompleted
from tests.support import (
    Api,
    Person,
    accept,
    invitation_token,
    invite_ok,
    invited_person,
    patch_member,
    subject_has,
    wait_for,
    wait_mail_matching,
    wait_row,
)

from .browser import new_browser
from .checks import check_page
from .conftest import NamedAdmin as Admin
from .pages import RecordPage, UsersPage, sign_in

pytestmark = pytest.mark.e2e


async def _group(api: Api, admin: Admin, name: str) -> str:
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/groups"),
        json={"name": name},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["group_id"])


async def _put_in_group(api: Api, admin: Admin, group: str, account: str) -> None:
    r = await api.http.put(
        api.url(
            "membership", f"/v1/departments/{admin.department_id}/groups/{group}/members/{account}"
        ),
        headers=admin.headers,
    )
    assert r.status_code == 204, r.text


async def _reported(api: Api, admin: Admin, person: Person, **expected: Any) -> None:
    """Wait until reporting's row of ``person`` has these values."""
    await wait_row(
        api,
        admin,
        person.account_id,
        lambda r: r is not None and all(r.get(k) == v for k, v in expected.items()),
        what=f"{person.email} with {expected} in the users table",
    )


async def _until_shown(page: Page, shown: Callable[[], Awaitable[bool]], what: str) -> None:
    """Reload the page until it shows what reporting will soon have."""

    async def probe() -> bool:
        await page.reload()
        return await shown()

    await wait_for(probe, timeout=30, interval=0.3, what=what)


async def _history_has(page: Page, text: str) -> bool:
    return await page.locator(".history").get_by_text(text, exact=True).count() > 0


async def test_an_admin_changes_role_employee_id_groups_and_status(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    person = await invited_person(api, admin, name="Rae Record")
    night = await _group(api, admin, "Night shift")
    await _group(api, admin, "Day shift")
    other = await invited_person(api, admin, name="Tom Taken")
    taken = f"E-{uuid.uuid4().hex[:6]}"
    assert (await patch_member(api, admin, other.account_id, {"employee_id": taken})).is_success
    await _reported(api, admin, person)

    await sign_in(page, console_url, admin.email)
    users = await UsersPage(page).open(console_url, admin.department_id)
    await users.table.get_by_role("link", name="Rae Record").click()
    record = RecordPage(page)
    await expect(page.get_by_role("heading", name="Rae Record", level=1)).to_be_visible()
    await expect(page.get_by_text(admin.department_name, exact=True)).to_be_visible()
    await expect(record.shown("Role")).to_have_text("Member")
    await expect(record.history.first).to_contain_text("Joined as Member, through an invitation")
    await check_page(page, "record")

    # The role: membership's answer shows at once, whatever reporting has yet.
    await record.change_role("Officer")
    await expect(record.notice).to_contain_text("Rae Record is now an Officer.")
    await expect(record.shown("Role")).to_have_text("Officer")
    await _reported(api, admin, person, role="officer")

    # An employee ID someone else has: the reason, next to the field.
    await record.set_employee_id(taken)
    field = record.employee_id
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#employee_id-error")).to_contain_text(
        "Another person in this department has this employee ID."
    )
    await expect(field).to_have_value(taken)
    await expect(page).to_have_title(re.compile("^Error: Rae Record"))
    await check_page(page, "record-error")
    mine = f"E-{uuid.uuid4().hex[:6]}"
    await record.set_employee_id(mine)
    await expect(record.notice).to_contain_text(f"Employee ID set to {mine}.")
    await expect(record.shown("Employee ID")).to_have_text(mine)

    # Groups: in, and out again.
    await record.add_to_group("Night shift")
    await expect(record.notice).to_contain_text("Rae Record was added to Night shift.")
    await expect(record.shown("Groups")).to_have_text("Night shift")
    await _reported(api, admin, person, groups=[{"group_id": night, "name": "Night shift"}])
    await page.get_by_role("button", name="Remove from Night shift").click()
    await expect(record.notice).to_contain_text("Rae Record left Night shift.")
    await expect(record.shown("Groups")).to_have_text("None")

    # Inactive, then active again: the button says what it will do.
    await page.get_by_role("button", name="Mark as inactive").click()
    await expect(record.notice).to_contain_text("Rae Record is marked inactive.")
    await expect(record.shown("Status")).to_have_text("Inactive")
    await page.get_by_role("button", name="Mark as active").click()
    await expect(record.shown("Status")).to_have_text("Active")
    await _reported(api, admin, person, status="active", employee_id=mine, groups=[])

    # The history catches up with every change.
    await _until_shown(page, lambda: _history_has(page, "Marked active."), "the history up to date")
    for line in (
        "Role changed from Member to Officer.",
        f"Employee ID set to {mine}.",
        "Added to Night shift.",
        "Taken out of Night shift.",
        "Marked inactive.",
    ):
        await expect(page.locator(".history").get_by_text(line, exact=True)).to_be_visible()
    await check_page(page, "record-history")


async def test_the_last_admin_is_told_why_their_role_stays(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    await sign_in(page, console_url, admin.email)
    record = await RecordPage(page).open(console_url, admin.department_id, admin.account_id)
    await record.change_role("Member")
    await expect(page.locator("#role-error")).to_contain_text(
        "This is the department's only admin; make someone else admin first."
    )
    await expect(record.shown("Role")).to_have_text("Admin")
    # The actions also work as plain forms, without script.
    await check_page(page, "record-last-admin")


async def test_a_password_reset_email_is_on_its_way(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    person = await invited_person(api, admin, name="Pia Password")
    await _reported(api, admin, person)
    await sign_in(page, console_url, admin.email)
    record = await RecordPage(page).open(console_url, admin.department_id, person.account_id)
    await page.get_by_role("button", name="Send a password reset email").click()
    await expect(record.notice).to_contain_text(
        f"A password reset email is on its way to {person.email}."
    )
    [mail] = await wait_mail_matching(api, person.email, subject_has("reset"), what="reset email")
    assert "/set-password?token=" in mail["text"]


async def test_removed_they_keep_their_account_and_invited_back_everything_returns(
    browser: Browser, page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    person = await invited_person(api, admin, name="Ray Return")
    crew = await _group(api, admin, "Crew")
    await _put_in_group(api, admin, crew, person.account_id)
    ray_id = f"R-{uuid.uuid4().hex[:6]}"
    r = await patch_member(
        api, admin, person.account_id, {"role": "officer", "employee_id": ray_id}
    )
    assert r.is_success, r.text
    await _reported(api, admin, person, role="officer", employee_id=ray_id)

    await sign_in(page, console_url, admin.email)
    record = await RecordPage(page).open(console_url, admin.department_id, person.account_id)
    await page.get_by_role("link", name="Remove from the department").click()
    await expect(
        page.get_by_role("heading", name=f"Remove Ray Return from {admin.department_name}?")
    ).to_be_visible()
    await expect(page.get_by_text("They keep their account")).to_be_visible()
    await expect(page.get_by_text("They can be invited back")).to_be_visible()
    await check_page(page, "record-remove")
    await page.get_by_role("button", name="Remove Ray Return").click()
    await expect(
        page.get_by_role("heading", name="Ray Return is no longer a member")
    ).to_be_visible()
    await check_page(page, "record-removed")
    await wait_row(api, admin, person.account_id, lambda r: r is None, what="Ray gone")
    response = await page.goto(f"/departments/{admin.department_id}/users/{person.account_id}")
    assert response is not None and response.status == 404

    # Ray still signs in, and is told he is in no department.
    theirs = await new_browser(browser, console_url)
    try:
        ray = await theirs.new_page()
        await sign_in(ray, console_url, person.email)
        await expect(ray.get_by_text("You are not a member of any department.")).to_be_visible()
        await check_page(ray, "home-no-department")

        # Invited back (through the API), he accepts with his account.
        [result] = await invite_ok(api, admin, [person.email])
        assert result["outcome"] == "invited", result
        mails = await wait_mail_matching(
            api,
            person.email,
            lambda m: "/invitations/" in m["text"],
            count=2,  # the first brought him in
            what="a second invitation",
        )
        back = await accept(api, invitation_token(mails[-1]), person=person)
        assert back.status_code == 200 and back.json()["status"] == "restored", back.text
        await ray.reload()
        await expect(ray.get_by_role("link", name=admin.department_name)).to_be_visible()
    finally:
        await theirs.close()

    # The record is back with its role, groups, employee ID and the whole history.
    await _reported(api, admin, person, role="officer", employee_id=ray_id)
    await record.open(console_url, admin.department_id, person.account_id)
    await expect(record.shown("Groups")).to_have_text("Crew")
    await expect(record.shown("Employee ID")).to_have_text(ray_id)
    await expect(record.shown("Role")).to_have_text("Officer")
    await expect(record.history.first).to_have_text(
        re.compile("Came back as Officer, through an invitation.")
    )
    await expect(
        page.locator(".history").get_by_text("Removed from the department.")
    ).to_be_visible()
    await expect(page.locator(".history").get_by_text("Added to Crew.")).to_be_visible()


def _completed(admin: Admin, person: Person, certificate: str, title: str) -> bytes:
    payload = CourseCompleted(
        department_id=uuid.UUID(admin.department_id),
        account_id=uuid.UUID(person.account_id),
        course_id=f"course-{certificate}",
        title=title,
        completed_on=datetime.now(UTC).date(),
        hours=4.5,
        credits=0.5,
        certificate_id=certificate,
    )
    return wrap(payload, producer="training-platform", key=person.account_id).encode()


async def test_a_certificate_downloads_as_a_pdf_with_the_persons_name(
    page: Page, console_url: str, api: Api, admin: Admin, bootstrap: str, tmp_path: Path
) -> None:
    person = await invited_person(api, admin, name="Zoë Certified")
    tag = uuid.uuid4().hex[:8]
    cpr, ethics = f"cert-cpr-{tag}", f"cert-ethics-{tag}"
    revoked = CertificateRevoked(
        department_id=uuid.UUID(admin.department_id),
        account_id=uuid.UUID(person.account_id),
        certificate_id=ethics,
        reason="Issued in error",
        revoked_at=datetime.now(UTC),
    )
    # On the training topic, as the training platform publishes (keyed by the person).
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        key = person.account_id.encode()
        for value in (
            _completed(admin, person, cpr, "CPR and AED for Healthcare Providers"),
            _completed(admin, person, ethics, "Ethics in EMS"),
            wrap(revoked, producer="training-platform", key=person.account_id).encode(),
        ):
            await producer.send_and_wait(TRAINING_EVENTS.name, value, key=key)
    finally:
        await producer.stop()
    await _reported(api, admin, person)

    await sign_in(page, console_url, admin.email)
    record = await RecordPage(page).open(console_url, admin.department_id, person.account_id)
    link = page.get_by_role(
        "link", name="Download the certificate for CPR and AED for Healthcare Providers (PDF)"
    )

    revoked_row = page.get_by_role("row", name=re.compile("Ethics in EMS"))

    async def listed() -> bool:
        return await link.count() == 1 and "Revoked" in "".join(await revoked_row.all_inner_texts())

    await _until_shown(page, listed, "the transcript on the record")
    await expect(page.get_by_text("4.5 hours, 0.5 credits, 1 certificate")).to_be_visible()
    await check_page(page, "record-transcript")
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    assert download.suggested_filename == f"certificate-{cpr}.pdf"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    text = PdfReader(io.BytesIO(saved.read_bytes())).pages[0].extract_text()
    assert "Zoë Certified" in text and "CPR and AED for Healthcare Providers" in text
    assert admin.department_name in text
    # A revoked certificate has no PDF: its row says so instead of offering one.
    await expect(revoked_row).to_contain_text("Issued in error")
    assert await page.get_by_role("link", name=re.compile("Ethics in EMS")).count() == 0
    response = await page.goto(
        f"/departments/{admin.department_id}/users/{person.account_id}/certificates/{ethics}"
    )
    assert response is not None and response.status == 410
    assert record is not None


async def _csrf_token(page: Page) -> str:
    return await page.locator("input[name=csrf_token]").first.input_value()


async def _refused_everywhere(
    page: Page, admin: Admin, person: Person, refusal: str, change_refusal: str
) -> None:
    """Signed in as someone who may not: the record, a change and a certificate are
    refused with the services' own reasons."""
    base = f"/departments/{admin.department_id}/users/{person.account_id}"
    response = await page.goto(base)
    assert response is not None and response.status == 403
    await expect(
        page.get_by_role("heading", name="You are not allowed to see this")
    ).to_be_visible()
    await expect(page.get_by_text(refusal)).to_be_visible()
    # A change sent anyway (with a valid form token): membership says no.
    answer = await page.request.post(
        f"{base}/role", form={"role": "admin", "csrf_token": await _csrf_token(page)}
    )
    assert answer.status == 403
    assert change_refusal in await answer.text()
    answer = await page.request.post(f"{base}/remove", form={"csrf_token": await _csrf_token(page)})
    assert answer.status == 403
    response = await page.goto(f"{base}/certificates/anything")
    assert response is not None and response.status == 403


async def test_a_member_and_another_departments_admin_can_see_and_do_none_of_it(
    context: BrowserContext, page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    person = await invited_person(api, admin, name="Sam Subject")
    member = await invited_person(api, admin, name="Mo Member")
    await _reported(api, admin, member)

    await sign_in(page, console_url, member.email)
    # A member sees the department, not its admin pages.
    await expect(page.get_by_role("link", name=admin.department_name)).to_be_visible()
    await expect(page.get_by_text("You are a member.")).to_be_visible()
    await page.get_by_role("link", name=admin.department_name).click()
    await expect(page.get_by_role("navigation", name=admin.department_name)).to_have_count(0)
    await _refused_everywhere(
        page,
        admin,
        person,
        "Only admins and officers of this department may see its reports.",
        "You do not administer this department.",
    )
    await check_page(page, "record-not-allowed")

    await context.clear_cookies()
    stranger = await api.create_department(f"Elsewhere {uuid.uuid4().hex[:4]}")
    await sign_in(page, console_url, stranger.email)
    await _refused_everywhere(
        page,
        admin,
        person,
        "Only admins and officers of this department may see its reports.",
        "You do not administer this department.",
    )
    # Nothing changed.
    row = await wait_row(api, admin, person.account_id, lambda r: r is not None, what="Sam")
    assert row is not None and row["role"] == "member"


async def test_an_officer_reads_the_record_but_changes_nothing(
    page: Page, console_url: str, api: Api, admin: Admin
) -> None:
    officer = await invited_person(api, admin, role="officer", name="Olu Officer")
    person = await invited_person(api, admin, name="Pat Person")
    await _reported(api, admin, officer)
    await _reported(api, admin, person)
    await sign_in(page, console_url, officer.email)
    record = await RecordPage(page).open(console_url, admin.department_id, person.account_id)
    await expect(page.get_by_role("heading", name="Pat Person", level=1)).to_be_visible()
    await expect(record.shown("Role")).to_have_text("Member")
    await expect(page.get_by_role("heading", name="Manage")).to_have_count(0)
    await expect(
        page.get_by_text("Only the department's admins change people's details.")
    ).to_be_visible()
    answer = await page.request.post(
        f"/departments/{admin.department_id}/users/{person.account_id}/status",
        form={"status": "inactive", "csrf_token": await _csrf_token(page)},
    )
    assert answer.status == 403
    assert "You do not administer this department." in await answer.text()
