"""The "My training" page in the browser: a person who was removed from a department
signs in, finds their training there from the home page, and downloads the certificate
they earned in it; the page passes axe at desktop and phone width."""

from __future__ import annotations

import io
import re
import uuid
from datetime import date
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Page, expect
from pypdf import PdfReader

from prodigy_users.contracts.envelope import wrap
from prodigy_users.contracts.topics import TRAINING_EVENTS
from prodigy_users.contracts.training import CourseCompleted
from tests.support import Api, bearer, invited_person, wait_for

from .checks import check_page
from .conftest import NamedAdmin as Admin
from .pages import sign_in

pytestmark = pytest.mark.e2e


async def test_a_removed_person_downloads_their_certificate_from_my_training(
    page: Page, console_url: str, api: Api, admin: Admin, bootstrap: str, tmp_path: Path
) -> None:
    person = await invited_person(api, admin, name="Lena Left")
    cert = f"cert-cpr-{uuid.uuid4().hex[:8]}"
    completed = CourseCompleted(
        department_id=uuid.UUID(admin.department_id),
        account_id=uuid.UUID(person.account_id),
        course_id="ems-cpr",
        title="CPR and AED for Healthcare Providers",
        completed_on=date(2026, 6, 1),
        hours=4.5,
        credits=0.5,
        certificate_id=cert,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        value = wrap(completed, producer="training-platform", key=person.account_id).encode()
        await producer.send_and_wait(TRAINING_EVENTS.name, value, key=person.account_id.encode())
    finally:
        await producer.stop()
    members = api.url(
        "membership", f"/v1/departments/{admin.department_id}/members/{person.account_id}"
    )

    async def trained() -> bool:
        r = await api.http.get(api.url("reporting", "/v1/me/record"), headers=person.headers)
        return r.status_code == 200 and any(d["transcript"] for d in r.json()["departments"])

    await wait_for(trained, timeout=45, what="the completion on the person's record")
    assert (await api.http.delete(members, headers=admin.headers)).status_code == 204

    async def removed() -> bool:
        r = await api.http.get(api.url("reporting", "/v1/me/record"), headers=person.headers)
        return any(d["member"] is False for d in r.json()["departments"])

    await wait_for(removed, timeout=45, what="the removal on the person's record")
    # The department's admin no longer sees the record.
    r = await api.http.get(
        api.url(
            "reporting",
            f"/v1/reports/departments/{admin.department_id}/users/{person.account_id}",
        ),
        headers=bearer(admin.token),
    )
    assert r.status_code == 404, r.text

    await sign_in(page, console_url, person.email)
    await expect(page.get_by_text("You are not a member of any department.")).to_be_visible()
    await page.get_by_role("link", name="My training").click()
    await expect(page.get_by_role("heading", name="My training", level=1)).to_be_visible()
    section = page.get_by_role("region", name=admin.department_name)
    await expect(section.get_by_role("heading", name=admin.department_name)).to_be_visible()
    await expect(section.get_by_text(re.compile(r"^You left on "))).to_be_visible()
    await expect(section.get_by_text("4.5 hours, 0.5 credits, 1 certificate.")).to_be_visible()
    await expect(section.locator(".history li").first).to_contain_text("Removed")
    await check_page(page, "my-training")

    link = section.get_by_role(
        "link", name="Download the certificate for CPR and AED for Healthcare Providers (PDF)"
    )
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    assert download.suggested_filename == f"certificate-{cert}.pdf"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    text = PdfReader(io.BytesIO(saved.read_bytes())).pages[0].extract_text()
    assert "Lena Left" in text and "CPR and AED for Healthcare Providers" in text
    assert admin.department_name in text

    # Someone else's (or an unknown) certificate is not theirs to download.
    response = await page.goto(f"/my/training/certificates/nope-{cert}")
    assert response is not None and response.status == 404


async def test_the_page_needs_a_signed_in_person(page: Page) -> None:
    await page.goto("/my/training")
    await expect(page).to_have_url(re.compile(r"/sign-in"))


async def test_a_member_with_no_training_yet_sees_empty_sections(
    page: Page, console_url: str, admin: Admin
) -> None:
    await sign_in(page, console_url, admin.email)
    await page.goto("/my/training")
    await expect(page.get_by_role("heading", name="My training", level=1)).to_be_visible()
    # The admin belongs to their department: it is listed, with no training yet.
    section = page.get_by_role("region", name=admin.department_name)
    await expect(section.get_by_text("No completed courses yet.")).to_be_visible()
    await expect(section.get_by_text("No courses assigned.")).to_be_visible()
    await check_page(page, "my-training-empty")
