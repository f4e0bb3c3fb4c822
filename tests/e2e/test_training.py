"""Training from the training platform, end to end: events on ``training.events.v1`` (published
here with plain aiokafka, as the platform would) become each person's training plan,
transcript, totals and certificate PDFs on the individual record."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pypdf import PdfReader

from prodigy_users.contracts.envelope import Payload, wrap
from prodigy_users.contracts.membership import DepartmentCreated, MemberAdded
from prodigy_users.contracts.topics import MEMBERSHIP_EVENTS, TRAINING_EVENTS
from prodigy_users.contracts.training import CertificateRevoked, CourseAssigned, CourseCompleted
from tests.support import (
    Admin,
    Api,
    Keys,
    Person,
    accept,
    added_person,
    dead_letters,
    invitation_token,
    invite_ok,
    invited_person,
    problem_type,
    random_email,
    subject_has,
    wait_for,
    wait_mail_matching,
)

pytestmark = pytest.mark.e2e

PLATFORM = "training-platform"
Message = tuple[str, bytes]  # (key, value)


def _today() -> date:
    return datetime.now(UTC).date()


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def _training(payload: Payload, account: uuid.UUID | str) -> Message:
    """A training event as the platform publishes it: keyed by the person."""
    return str(account), wrap(payload, producer=PLATFORM, key=str(account)).encode()


def _membership(payload: Payload, department: uuid.UUID) -> Message:
    return str(department), wrap(payload, producer="membership", key=str(department)).encode()


async def _send(
    bootstrap: str, topic: str, messages: Sequence[Message], *, partition: int | None = None
) -> None:
    """Publish in order (one at a time: each is acknowledged before the next goes)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key.encode(), partition=partition)
    finally:
        await producer.stop()


def _completion(
    department: uuid.UUID | str,
    account: uuid.UUID | str,
    certificate: str,
    *,
    course: str,
    title: str,
    on: date,
    hours: float,
    credits: float = 0,
) -> CourseCompleted:
    return CourseCompleted(
        department_id=uuid.UUID(str(department)),
        account_id=uuid.UUID(str(account)),
        course_id=course,
        title=title,
        completed_on=on,
        hours=hours,
        credits=credits,
        certificate_id=certificate,
    )


def _record_url(api: Api, department: str, account: str, path: str = "") -> str:
    return api.url("reporting", f"/v1/reports/departments/{department}/users/{account}{path}")


async def _get(
    api: Api, viewer: Admin | Person, department: str, account: str, path: str = ""
) -> httpx.Response:
    return await api.http.get(_record_url(api, department, account, path), headers=viewer.headers)


async def _wait_record(
    api: Api,
    viewer: Admin,
    account: str,
    check: Callable[[dict[str, Any]], bool],
    *,
    what: str,
    timeout: float = 45.0,
) -> dict[str, Any]:
    """Wait until the person's record exists and passes ``check``."""

    async def probe() -> dict[str, Any] | None:
        r = await _get(api, viewer, viewer.department_id, account)
        if r.status_code in (403, 404):  # reporting has not seen the viewer or the person yet
            return None
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if check(body) else None

    return await wait_for(probe, timeout=timeout, what=what)


def _certificates(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["certificate_id"]: entry for entry in record["transcript"]}


def _pdf_pages(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    return [page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages]


def _long(day: date) -> str:
    return f"{day.day} {day:%B} {day.year}"


async def _synthetic_department(api: Api, keys: Keys, bootstrap: str) -> tuple[Admin, str]:
    """A department and its admin published straight onto the membership topic, so the
    test decides when (and whether) each person becomes a member."""
    department, admin_id = uuid.uuid4(), uuid.uuid4()
    name = f"Training Dept {_tag()}"
    email = random_email("admin")
    now = datetime.now(UTC)
    await _send(
        bootstrap,
        MEMBERSHIP_EVENTS.name,
        [
            _membership(DepartmentCreated(department_id=department, name=name), department),
            _membership(
                MemberAdded(
                    department_id=department,
                    account_id=admin_id,
                    name="Ada Admin",
                    email=email,
                    role="admin",
                    joined_at=now,
                ),
                department,
            ),
        ],
    )
    admin = Admin(str(department), str(admin_id), email, keys.token(admin_id))
    await api.wait_reported(admin, email)
    return admin, name


async def test_training_arriving_before_the_membership_lands_on_the_record(
    api: Api, keys: Keys, bootstrap: str
) -> None:
    admin, department_name = await _synthetic_department(api, keys, bootstrap)
    department = uuid.UUID(admin.department_id)
    person = uuid.uuid4()
    tag, today = _tag(), _today()
    cpr, ethics, hazmat = f"cpr-{tag}", f"ethics-{tag}", f"hazmat-{tag}"
    first = _completion(
        department,
        person,
        f"cert-cpr-{tag}",
        course=cpr,
        title="CPR and AED for Healthcare Providers",
        on=today,
        hours=4.5,
        credits=0.5,
    )
    repeated = _training(first, person)
    # Everything for the person, and then a fence (a completion of the admin's) on the
    # same partition: once the fence shows, everything before it has been applied.
    await _send(
        bootstrap,
        TRAINING_EVENTS.name,
        [
            _training(
                CourseAssigned(
                    department_id=department,
                    account_id=person,
                    course_id=cpr,
                    title="CPR and AED for Healthcare Providers",
                    plan="2026 recertification",
                    due_on=today + timedelta(days=30),
                    assigned_at=datetime.now(UTC) - timedelta(days=1),
                ),
                person,
            ),
            _training(
                CourseAssigned(
                    department_id=department,
                    account_id=person,
                    course_id=hazmat,
                    title="Hazardous Materials Awareness",
                    due_on=today - timedelta(days=1),
                    assigned_at=datetime.now(UTC) - timedelta(days=20),
                ),
                person,
            ),
            repeated,
            repeated,  # redelivered as is: the inbox drops it
            _training(first, person),  # sent again as a new event: the same certificate
            _training(
                _completion(
                    department,
                    person,
                    f"cert-ethics-{tag}",
                    course=ethics,
                    title="Ethics in EMS",
                    on=today - timedelta(days=10),
                    hours=2,
                    credits=0.25,
                ),
                person,
            ),
            _training(
                _completion(
                    department,
                    admin.account_id,
                    f"fence-{tag}",
                    course="fence",
                    title="Fence",
                    on=today,
                    hours=0,
                ),
                admin.account_id,
            ),
        ],
        partition=0,
    )
    await _wait_record(
        api,
        admin,
        admin.account_id,
        lambda r: f"fence-{tag}" in _certificates(r),
        what="the fence on the admin's transcript",
    )
    r = await _get(api, admin, admin.department_id, str(person))
    assert r.status_code == 404, "the training arrived first: the person is not a member yet"
    r = await _get(api, admin, admin.department_id, str(person), f"/certificates/cert-cpr-{tag}")
    assert r.status_code == 404 and problem_type(r) == "not-found", r.text

    await _send(
        bootstrap,
        MEMBERSHIP_EVENTS.name,
        [
            _membership(
                MemberAdded(
                    department_id=department,
                    account_id=person,
                    name="Zoë Early",
                    email=random_email("early"),
                    role="member",
                    joined_at=datetime.now(UTC),
                ),
                department,
            )
        ],
    )
    record = await _wait_record(
        api, admin, str(person), lambda r: bool(r["transcript"]), what="the person's record"
    )

    assert record["name"] == "Zoë Early" and record["role"] == "member"
    assert [e["certificate_id"] for e in record["transcript"]] == [
        f"cert-cpr-{tag}",
        f"cert-ethics-{tag}",
    ], "newest first, the repeated completion once"
    cpr_entry = record["transcript"][0]
    assert cpr_entry["course_id"] == cpr
    assert (cpr_entry["completed_on"], cpr_entry["hours"], cpr_entry["credits"]) == (
        today.isoformat(),
        4.5,
        0.5,
    )
    assert cpr_entry["revoked"] is False
    assert record["totals"] == {"hours": 6.5, "credits": 0.75, "certificates": 2}
    plans = {p["course_id"]: p for p in record["training_plans"]}
    assert list(plans) == [hazmat, cpr], "soonest due first"
    assert plans[cpr]["status"] == "completed"
    assert plans[cpr]["certificate_id"] == f"cert-cpr-{tag}"
    assert plans[cpr]["plan"] == "2026 recertification"
    assert plans[cpr]["due_on"] == (today + timedelta(days=30)).isoformat()
    assert (plans[hazmat]["status"], plans[hazmat]["overdue"]) == ("assigned", True)

    pages = _pdf_pages(
        await _get(api, admin, admin.department_id, str(person), f"/certificates/cert-cpr-{tag}")
    )
    assert len(pages) == 1
    for expected in (
        "Zoë Early",
        "CPR and AED for Healthcare Providers",
        _long(today),
        "4.5 contact hours",
        "0.5 credits",
        f"Issued by {department_name}",
        f"cert-cpr-{tag}",
    ):
        assert expected in pages[0], (expected, pages[0])

    # The platform revokes the CPR certificate: listed, marked, counted for nothing.
    await _send(
        bootstrap,
        TRAINING_EVENTS.name,
        [
            _training(
                CertificateRevoked(
                    department_id=department,
                    account_id=person,
                    certificate_id=f"cert-cpr-{tag}",
                    reason="Issued in error",
                    revoked_at=datetime.now(UTC),
                ),
                person,
            )
        ],
    )
    record = await _wait_record(
        api,
        admin,
        str(person),
        lambda r: _certificates(r)[f"cert-cpr-{tag}"]["revoked"],
        what="the revocation on the transcript",
    )
    revoked = _certificates(record)[f"cert-cpr-{tag}"]
    assert revoked["revoked_reason"] == "Issued in error" and revoked["revoked_at"]
    assert record["totals"] == {"hours": 2.0, "credits": 0.25, "certificates": 1}
    assert {p["course_id"]: p["status"] for p in record["training_plans"]}[cpr] == "assigned"
    r = await _get(api, admin, admin.department_id, str(person), f"/certificates/cert-cpr-{tag}")
    assert r.status_code == 410 and problem_type(r) == "certificate-revoked", r.text
    r = await _get(api, admin, admin.department_id, str(person), "/certificates/no-such-cert")
    assert r.status_code == 404 and problem_type(r) == "certificate-not-found", r.text

    everything = await _get(api, admin, admin.department_id, str(person), "/certificates")
    pages = _pdf_pages(everything)
    assert len(pages) == 1, "the revoked certificate is left out"
    assert f"cert-ethics-{tag}" in pages[0] and "Ethics in EMS" in pages[0]
    assert _long(today - timedelta(days=10)) in pages[0]
    assert f'filename="certificates-{person}.pdf"' in everything.headers["content-disposition"]


async def _wait_gone(api: Api, admin: Admin, account: str) -> None:
    async def probe() -> bool:
        r = await _get(api, admin, admin.department_id, account)
        return r.status_code == 404

    await wait_for(probe, what="the removed person's record gone")


async def test_a_removed_persons_training_comes_back_when_they_are_restored(
    api: Api, bootstrap: str
) -> None:
    name = f"Station {_tag()}"
    admin = await api.create_department(name)
    person = await invited_person(api, admin, name="Tomás Trainee")
    tag = _tag()
    march = date(2026, 3, 14)
    await _send(
        bootstrap,
        TRAINING_EVENTS.name,
        [
            _training(
                _completion(
                    admin.department_id,
                    person.account_id,
                    f"before-{tag}",
                    course=f"pals-{tag}",
                    title="Pediatric Advanced Life Support",
                    on=march,
                    hours=8,
                    credits=1,
                ),
                person.account_id,
            )
        ],
    )
    await _wait_record(
        api,
        admin,
        person.account_id,
        lambda r: f"before-{tag}" in _certificates(r),
        what="the completion on the record",
    )
    r = await _get(
        api, admin, admin.department_id, person.account_id, f"/certificates/before-{tag}"
    )
    [page] = _pdf_pages(r)
    for expected in ("Tomás Trainee", "Pediatric Advanced Life Support", "14 March 2026", name):
        assert expected in page, (expected, page)
    assert f'filename="certificate-before-{tag}.pdf"' in r.headers["content-disposition"]

    members_url = api.url(
        "membership", f"/v1/departments/{admin.department_id}/members/{person.account_id}"
    )
    assert (await api.http.delete(members_url, headers=admin.headers)).status_code == 204
    await _wait_gone(api, admin, person.account_id)
    for path in (f"/certificates/before-{tag}", "/certificates"):
        r = await _get(api, admin, admin.department_id, person.account_id, path)
        assert r.status_code == 404 and problem_type(r) == "not-found", (path, r.text)
    # Training goes on arriving while they are away; it is kept for their return.
    await _send(
        bootstrap,
        TRAINING_EVENTS.name,
        [
            _training(
                _completion(
                    admin.department_id,
                    person.account_id,
                    f"while-away-{tag}",
                    course=f"acls-{tag}",
                    title="Advanced Cardiac Life Support",
                    on=date(2026, 4, 2),
                    hours=6,
                ),
                person.account_id,
            )
        ],
    )

    [result] = await invite_ok(api, admin, [person.email])
    assert result["outcome"] == "invited", result
    mails = await wait_mail_matching(api, person.email, subject_has("invited", name), count=2)
    r = await accept(api, invitation_token(mails[-1]), person=person)
    assert r.status_code == 200 and r.json()["status"] == "restored", r.text

    record = await _wait_record(
        api,
        admin,
        person.account_id,
        lambda r: len(r["transcript"]) == 2,
        what="the restored record with both completions",
    )
    assert [e["certificate_id"] for e in record["transcript"]] == [
        f"while-away-{tag}",
        f"before-{tag}",
    ]
    assert record["totals"] == {"hours": 14.0, "credits": 1.0, "certificates": 2}
    pages = _pdf_pages(
        await _get(api, admin, admin.department_id, person.account_id, "/certificates")
    )
    assert len(pages) == 2
    assert "Advanced Cardiac Life Support" in pages[0] and "2 April 2026" in pages[0]
    assert "Pediatric Advanced Life Support" in pages[1] and "14 March 2026" in pages[1]


async def test_only_admins_and_officers_of_the_department_see_training(
    api: Api, bootstrap: str
) -> None:
    admin = await api.create_department()
    officer = await added_person(api, admin, role="officer")
    member = await added_person(api, admin, role="member")
    stranger = await api.create_department()
    tag = _tag()
    await _send(
        bootstrap,
        TRAINING_EVENTS.name,
        [
            _training(
                _completion(
                    admin.department_id,
                    member.account_id,
                    f"authz-{tag}",
                    course=f"course-{tag}",
                    title="Scene Safety",
                    on=_today(),
                    hours=1,
                ),
                member.account_id,
            )
        ],
    )
    officer_view = Admin(admin.department_id, officer.account_id, officer.email, officer.token)
    record = await _wait_record(
        api,
        officer_view,
        member.account_id,
        lambda r: f"authz-{tag}" in _certificates(r),
        what="the officer seeing the member's transcript",
    )
    assert record["totals"]["certificates"] == 1
    [page] = _pdf_pages(
        await _get(
            api, officer, admin.department_id, member.account_id, f"/certificates/authz-{tag}"
        )
    )
    assert "Scene Safety" in page

    paths = ("", f"/certificates/authz-{tag}", "/certificates")
    for viewer in (member, stranger):
        for path in paths:
            r = await _get(api, viewer, admin.department_id, member.account_id, path)
            assert r.status_code == 403 and problem_type(r) == "forbidden", (path, r.text)
    for path in paths:
        r = await api.http.get(_record_url(api, admin.department_id, member.account_id, path))
        assert r.status_code == 401, (path, r.text)


async def test_a_malformed_training_event_is_dead_lettered_and_consuming_goes_on(
    api: Api, keys: Keys, bootstrap: str
) -> None:
    admin, _ = await _synthetic_department(api, keys, bootstrap)
    marker = uuid.uuid4().hex
    key, valid = _training(
        _completion(
            admin.department_id,
            admin.account_id,
            f"after-{marker[:8]}",
            course="after",
            title="After the bad ones",
            on=_today(),
            hours=1,
        ),
        admin.account_id,
    )
    bad = json.loads(valid)
    bad["event_id"] = str(uuid.uuid4())
    bad["data"].update(hours=-3, title=f"Bad {marker}")
    await _send(
        bootstrap,
        TRAINING_EVENTS.name,
        [
            (key, f"not json at all {marker}".encode()),
            (key, json.dumps(bad).encode()),
            (key, valid),
        ],
    )

    await _wait_record(
        api,
        admin,
        admin.account_id,
        lambda r: f"after-{marker[:8]}" in _certificates(r),
        what="the valid event after the bad ones applied",
    )
    letters = await dead_letters(bootstrap, TRAINING_EVENTS.dlq, marker.encode(), 2)
    assert len(letters) == 2
    reasons = []
    for record in letters:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["x-original-topic"] == TRAINING_EVENTS.name
        assert headers["x-consumer"] == "reporting"
        assert record.key == key.encode()
        reasons.append(headers["x-dlq-reason"])
    assert any("not a valid envelope" in r for r in reasons), reasons
    assert any(r.startswith("training.course_completed v1: hours:") for r in reasons), reasons
