"""Each ordering and header promise of docs/events.md, checked on the records the flows
really wrote (read back with plain aiokafka, as a subscriber would):

- every record has the headers `type`, `event_id` and `content-type: application/json`,
  and its Kafka key is the envelope's `key`;
- with an exporter configured (the test stack sends spans to its OTLP receiver), a
  record caused by a traced request carries `traceparent` (the dev stack, without an
  exporter, writes none: tests/unit/test_tracing.py);
- on `membership.events.v1`, keyed by department: `department_created` comes before
  anyone is added, `member_added` / `member_restored` come just before the
  `invitation_accepted` that made them, and `import_finished` after the people of the
  upload;
- on `identity.events.v1`: an account made by registering gets `account_created`,
  `password_changed`, `account_email_confirmed`, in that order.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.e2e.import_support import csv_file, run_import
from tests.support import (
    Api,
    accept,
    checked_email,
    confirm_email,
    invitation_token,
    invite_ok,
    invited_person,
    join,
    join_token,
    random_email,
    registration,
    subject_has,
    wait_for,
    wait_mail_matching,
)

pytestmark = pytest.mark.e2e

_TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


async def _records(
    bootstrap: str, topic: str
) -> list[tuple[bytes | None, dict[str, bytes], dict[str, Any]]]:
    """(key, headers, envelope) of every record of the topic, partition by partition in
    offset order (the order within a key)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        assigned = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        out: dict[int, list[tuple[bytes | None, dict[str, bytes], dict[str, Any]]]] = {}
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                for r in batch:
                    try:
                        value = json.loads(r.value) if r.value is not None else None
                    except ValueError:
                        # Garbage other tests write to the shared stack's topics (the
                        # dead-letter tests): not membership's, and not promised anything.
                        continue
                    if value is None:
                        continue
                    out.setdefault(tp.partition, []).append((r.key, dict(r.headers), value))
        return [record for p in sorted(out) for record in out[p]]
    finally:
        await consumer.stop()


async def test_the_order_and_headers_docs_events_md_promises(api: Api, bootstrap: str) -> None:
    name = f"Promises {uuid.uuid4().hex[:6]}"
    admin = await api.create_department(name)
    dept = admin.department_id
    # Added through an invitation, then removed and restored through another.
    person = await invited_person(api, admin, name="Ines Invited")
    members = api.url("membership", f"/v1/departments/{dept}/members/{person.account_id}")
    assert (await api.http.delete(members, headers=admin.headers)).status_code == 204
    [result] = await invite_ok(api, admin, [person.email])
    assert result["outcome"] == "invited", result
    mails = await wait_mail_matching(api, person.email, subject_has("invited", name), count=2)
    r = await accept(api, invitation_token(mails[-1]), person=person)
    assert r.status_code == 200 and r.json()["status"] == "restored", r.text
    # An upload.
    uploaded = random_email("upload")
    status = await run_import(api, admin, csv_file([["Name", "Email"], ["Uma Upload", uploaded]]))
    assert status["counts"]["created"] == 1, status
    # A registration through the link, confirmed by email.
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{dept}/registration-link"),
        json={"role": "member"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    self_email = random_email("self")
    checked_email(
        await join(api, join_token(r.json()["url"]), body=registration(self_email, "Sol Self")),
        self_email,
    )
    confirmed = await confirm_email(api, self_email)

    async def department_events() -> list[Any] | None:
        records = await _records(bootstrap, "membership.events.v1")
        mine = [rec for rec in records if rec[2]["data"].get("department_id") == dept]
        done = [e for _, _, e in mine if e["type"] == "membership.member_added"]
        return mine if len(done) >= 4 else None  # admin, invitee, upload, registration

    mine = await wait_for(department_events, timeout=60, what="the department's events")

    # Headers and key, on every record.
    for key, headers, envelope in mine:
        assert headers.get("type") == envelope["type"].encode(), headers
        assert headers.get("event_id") == envelope["event_id"].encode(), headers
        assert headers.get("content-type") == b"application/json", headers
        assert key == envelope["key"].encode() == dept.encode()
    traced = [h for _, h, e in mine if e["type"] == "membership.invitation_accepted"]
    assert len(traced) == 2, traced
    for h in traced:
        assert _TRACEPARENT.match(h.get("traceparent", b"").decode()), h

    # The order within the department.
    types = [e["type"] for _, _, e in mine]
    assert types[0] == "membership.department_created", types
    for i, kind in enumerate(types):
        if kind == "membership.invitation_accepted":
            before = mine[i - 1][2]
            assert before["type"] in ("membership.member_added", "membership.member_restored")
            assert before["data"]["account_id"] == mine[i][2]["data"]["account_id"]
    accepted = [e["data"]["account_id"] for _, _, e in mine if e["type"].endswith("accepted")]
    assert accepted == [person.account_id, person.account_id]
    assert "membership.member_restored" in types
    finished = types.index("membership.import_finished")
    [upload_added] = [
        i
        for i, (_, _, e) in enumerate(mine)
        if e["type"] == "membership.member_added" and e["data"]["email"] == uploaded
    ]
    assert types.index("membership.import_started") < upload_added < finished

    # identity.events.v1: the registered account's creation, then its confirmation.
    account = confirmed["account_id"]
    about = [
        e["type"]
        for _, _, e in await _records(bootstrap, "identity.events.v1")
        if e["data"].get("account_id") == account
    ]
    created = about.index("identity.account_created")
    assert about[created : created + 3] == [
        "identity.account_created",
        "identity.password_changed",
        "identity.account_email_confirmed",
    ], about
