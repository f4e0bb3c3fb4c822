"""A person's own records (``/v1/me/record``, ``/v1/me/certificates/{id}``): their training
in every department they belong or belonged to, theirs for life.

A removed person signs in and still reads their record and downloads the certificate
they earned in the department that removed them, while that department's admin gets
404 for the same record.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from prodigy_users.contracts.topics import TRAINING_EVENTS
from prodigy_users.contracts.training import CertificateRevoked, CourseAssigned
from tests.e2e.test_training import (
    _certificates,
    _completion,
    _get,
    _pdf_pages,
    _send,
    _tag,
    _training,
    _wait_gone,
    _wait_record,
)
from tests.support import Api, Person, bearer, invited_person, problem_type, wait_for

pytestmark = pytest.mark.e2e


async def _my_record(api: Api, token: str) -> dict[str, Any]:
    r = await api.http.get(api.url("reporting", "/v1/me/record"), headers=bearer(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _wait_mine(
    api: Api, person: Person, department_id: str, check: Any, *, what: str
) -> dict[str, Any]:
    """Wait until the person's own record has the department and it passes ``check``."""

    async def probe() -> dict[str, Any] | None:
        body = await _my_record(api, person.token)
        found = [d for d in body["departments"] if d["department_id"] == department_id]
        return body if found and check(found[0]) else None

    return await wait_for(probe, timeout=45.0, what=what)


async def test_a_removed_person_keeps_their_record_and_certificates(
    api: Api, bootstrap: str
) -> None:
    name = f"Station {_tag()}"
    admin = await api.create_department(name)
    person = await invited_person(api, admin, name="Rosa Removed")
    tag = _tag()
    kept, revoked = f"kept-{tag}", f"revoked-{tag}"
    await _send(
        bootstrap,
        TRAINING_EVENTS.name,
        [
            _training(
                _completion(
                    admin.department_id,
                    person.account_id,
                    kept,
                    course=f"cpr-{tag}",
                    title="CPR and AED for Healthcare Providers",
                    on=date(2026, 5, 9),
                    hours=4.5,
                    credits=0.5,
                ),
                person.account_id,
            ),
            _training(
                _completion(
                    admin.department_id,
                    person.account_id,
                    revoked,
                    course=f"pals-{tag}",
                    title="Pediatric Advanced Life Support",
                    on=date(2026, 5, 10),
                    hours=8,
                ),
                person.account_id,
            ),
            _training(
                CertificateRevoked(
                    department_id=admin.department_id,
                    account_id=person.account_id,
                    certificate_id=revoked,
                    reason="Issued in error",
                    revoked_at=datetime.now(UTC),
                ),
                person.account_id,
            ),
            _training(
                CourseAssigned(
                    department_id=admin.department_id,
                    account_id=person.account_id,
                    course_id=f"acls-{tag}",
                    title="Advanced Cardiac Life Support",
                    due_on=date(2030, 1, 31),
                    assigned_at=datetime.now(UTC),
                ),
                person.account_id,
            ),
        ],
    )
    await _wait_record(
        api,
        admin,
        person.account_id,
        lambda r: len(r["transcript"]) == 2 and r["training_plans"],
        what="the training on the admins' record",
    )

    # While a member, the person sees what the admins see.
    mine = await _wait_mine(
        api,
        person,
        admin.department_id,
        lambda d: len(d["transcript"]) == 2 and d["training_plans"],
        what="the training on the person's own record",
    )
    [here] = [d for d in mine["departments"] if d["department_id"] == admin.department_id]
    assert (here["department_name"], here["member"], here["removed_at"]) == (name, True, None)
    assert here["name"] == "Rosa Removed" and here["email"] == person.email

    # Removed: the admins lose the record, the person keeps it.
    members_url = api.url(
        "membership", f"/v1/departments/{admin.department_id}/members/{person.account_id}"
    )
    assert (await api.http.delete(members_url, headers=admin.headers)).status_code == 204
    await _wait_gone(api, admin, person.account_id)
    for path in ("", f"/certificates/{kept}", "/certificates"):
        r = await _get(api, admin, admin.department_id, person.account_id, path)
        assert r.status_code == 404 and problem_type(r) == "not-found", (path, r.text)

    token = await api.login(person.email)  # the person signs in afresh
    mine = await _wait_mine(
        api,
        Person(person.account_id, person.email, token),
        admin.department_id,
        lambda d: d["member"] is False,
        what="the removal on the person's own record",
    )
    assert mine["account_id"] == person.account_id
    [here] = [d for d in mine["departments"] if d["department_id"] == admin.department_id]
    assert here["removed_at"] is not None and here["department_name"] == name
    assert set(_certificates(here)) == {kept, revoked}
    assert _certificates(here)[revoked]["revoked"] is True
    assert [p["course_id"] for p in here["training_plans"]] == [f"acls-{tag}"]
    assert here["totals"] == {"hours": 4.5, "credits": 0.5, "certificates": 1}
    assert [e["event"] for e in here["history"]][-1] == "removed"
    assert mine["totals"]["certificates"] >= 1

    r = await api.http.get(
        api.url("reporting", f"/v1/me/certificates/{kept}"), headers=bearer(token)
    )
    [page] = _pdf_pages(r)
    for expected in ("Rosa Removed", "CPR and AED for Healthcare Providers", "9 May 2026", name):
        assert expected in page, (expected, page)
    assert f'filename="certificate-{kept}.pdf"' in r.headers["content-disposition"]
    assert r.headers["cache-control"] == "private, no-store"

    # Bad paths: revoked, unknown, someone else's, and nobody signed in.
    r = await api.http.get(
        api.url("reporting", f"/v1/me/certificates/{revoked}"), headers=bearer(token)
    )
    assert r.status_code == 410 and problem_type(r) == "certificate-revoked", r.text
    r = await api.http.get(
        api.url("reporting", f"/v1/me/certificates/nope-{tag}"), headers=bearer(token)
    )
    assert r.status_code == 404 and problem_type(r) == "certificate-not-found", r.text
    assert r.json()["detail"] == "You have no such certificate."
    other = await invited_person(api, admin, name="Otto Other")
    r = await api.http.get(
        api.url("reporting", f"/v1/me/certificates/{kept}"), headers=other.headers
    )
    assert r.status_code == 404 and problem_type(r) == "certificate-not-found", r.text
    for path in ("/v1/me/record", f"/v1/me/certificates/{kept}"):
        r = await api.http.get(api.url("reporting", path))
        assert r.status_code == 401, (path, r.text)


async def test_someone_in_no_department_has_an_empty_record(api: Api) -> None:
    # An account that never joined anything (a token minted as identity would).
    token = api.keys.token(uuid.uuid4())
    body = await _my_record(api, token)
    assert body["departments"] == []
    assert body["totals"] == {"hours": 0.0, "credits": 0.0, "certificates": 0}
