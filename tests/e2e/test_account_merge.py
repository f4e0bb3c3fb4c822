"""An operator merges one person's two accounts (issue 16, item 2):
``prodigy-users accounts merge KEEP DROP`` (identity's ``POST /v1/accounts/{KEEP}/merges``).

Mara has two accounts: KEEP, a member of department A, and DROP, a member of B and
(through an invitation to her work address, which she accepted signed in as DROP, so
the work address is linked to DROP) of A too, in a group there. Both have training.
After the merge every address, membership and training record is KEEP's, DROP cannot
sign in, each users table has one row for her, an outside subscriber's rebuild of the
member list still equals the users table, and running the merge again changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import date
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.identity import AccountMerged
from prodigy_users.contracts.membership import MemberMerged
from prodigy_users.contracts.schema_export import file_name
from prodigy_users.contracts.topics import IDENTITY_EVENTS, TRAINING_EVENTS
from tests.e2e.test_linked_addresses import SCHEMAS, accept_signed_in
from tests.e2e.test_subscriber import (
    _as_table,
    lay_account_updates,
    read_account_updates,
    read_department_events,
    rebuild_members,
)
from tests.e2e.test_training import _completion, _send, _tag, _training
from tests.support import (
    PASSWORD,
    Admin,
    Api,
    Person,
    added_person,
    bearer,
    invite_ok,
    invited_person,
    problem_type,
    random_email,
    wait_for,
)

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "prodigy_users.stack.cli", "accounts", "merge"]


async def _cli_merge(stack: Any, keep: str, drop: str) -> subprocess.CompletedProcess[str]:
    command = [
        *CLI,
        keep,
        drop,
        "--data-dir",
        str(stack.config.data_dir),
        "--identity-url",
        stack.url("identity"),
    ]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=120, check=False
    )


async def _merge_http(api: Api, keep: str, drop: str, headers: dict[str, str]) -> Any:
    return await api.http.post(
        api.url("identity", f"/v1/accounts/{keep}/merges"),
        json={"account_id": drop},
        headers=headers,
    )


def _operator(api: Api) -> dict[str, str]:
    return bearer(api.keys.operator_token())


async def _my_record(api: Api, token: str) -> dict[str, Any]:
    r = await api.http.get(api.url("reporting", "/v1/me/record"), headers=bearer(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _certificates_by_department(record: dict[str, Any]) -> dict[str, set[str]]:
    return {
        d["department_id"]: {c["certificate_id"] for c in d["transcript"]}
        for d in record["departments"]
    }


async def _merged_events(bootstrap: str, kept: str, merged: str) -> list[tuple[str, Any]]:
    """``(key, envelope)`` of this pair's ``identity.account_merged`` events on the public
    topic, read to its end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        topic = IDENTITY_EVENTS.name
        partitions = sorted(consumer.partitions_for_topic(topic) or set())
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        found: dict[str, tuple[str, Any]] = {}
        deadline = time.monotonic() + 30
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            assert time.monotonic() < deadline, f"did not read {topic} to its end"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    envelope = json.loads(record.value) if record.value else None
                    if not envelope or envelope.get("type") != AccountMerged.TYPE:
                        continue
                    d = envelope["data"]
                    if d["kept_account_id"] == kept and d["merged_account_id"] == merged:
                        key = record.key.decode() if record.key else ""
                        found[envelope["event_id"]] = (key, envelope)
        return list(found.values())
    finally:
        await consumer.stop()


def _valid(envelope: Any, kind: type[Payload]) -> None:
    schema = json.loads((SCHEMAS / file_name(kind)).read_text())
    jsonschema.validate(envelope, schema, format_checker=jsonschema.FormatChecker())


async def _subscriber_view(
    api: Api, bootstrap: str, admin: Admin
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The outside subscriber's rebuild of the department's members (test_subscriber's),
    and the events it read."""
    marker = f"marker-{uuid.uuid4().hex}"
    await api.create_group(admin, marker)
    events = await read_department_events(bootstrap, admin.department_id, until_group=marker)
    rebuilt = lay_account_updates(rebuild_members(events), await read_account_updates(bootstrap))
    for member in rebuilt.values():
        member["email"] = member["email"].lower()
    return rebuilt, events


async def test_merging_two_accounts_moves_everything_once(
    api: Api, stack: Any, bootstrap: str
) -> None:
    if stack is None:
        pytest.skip("PRODIGY_TEST_TARGET=external: the command signs with the stack's key")
    tag = _tag()
    a = await api.create_department(f"Merge A {tag}")
    b = await api.create_department(f"Merge B {tag}")
    keep = await invited_person(api, a, name="Mara Keep")
    drop = await invited_person(api, b, name="Mara Drop")
    work = random_email("mara.work")
    await accept_signed_in(api, a, work, drop)  # DROP joins A too; work is linked to DROP
    night = await api.create_group(a, f"Night {tag}")
    await api.put_in_group(a, night, drop.account_id)

    k1, d1, d2, d3 = (f"{x}-{tag}" for x in ("k1", "d1", "d2", "d3"))
    course = f"cpr-{tag}"

    def done(dept: str, account: str, cert: str, day: int) -> Any:
        return _training(
            _completion(
                dept, account, cert, course=course, title="CPR", on=date(2026, 5, day), hours=4
            ),
            account,
        )

    await _send(
        bootstrap,
        TRAINING_EVENTS.name,
        [
            done(a.department_id, keep.account_id, k1, 1),
            done(a.department_id, drop.account_id, d1, 2),  # the same course, under DROP
            done(b.department_id, drop.account_id, d2, 3),
        ],
    )

    async def trained() -> bool | None:
        mine = _certificates_by_department(await _my_record(api, drop.token))
        return True if mine.get(a.department_id) == {d1} and mine.get(b.department_id) else None

    await wait_for(trained, timeout=45.0, what="DROP's training on its own record")

    # -- the merge, as an operator runs it --------------------------------------------
    first = await _cli_merge(stack, keep.account_id, drop.account_id)
    assert first.returncode == 0, first.stderr
    answer = json.loads(first.stdout)
    assert answer["kept_account_id"] == keep.account_id
    assert answer["merged_account_id"] == drop.account_id

    # DROP cannot sign in any more, and its token is refused at once by identity.
    r = await api.http.post(
        api.url("identity", "/v1/auth/token"), json={"email": drop.email, "password": PASSWORD}
    )
    assert r.status_code == 401, r.text
    r = await api.http.get(api.url("identity", "/v1/me"), headers=drop.headers)
    assert r.status_code == 401, r.text

    # Every address of DROP is KEEP's (linked; KEEP's login email stays).
    kept_token = await api.login(keep.email)
    r = await api.http.get(api.url("identity", "/v1/me/addresses"), headers=bearer(kept_token))
    assert r.status_code == 200, r.text
    addresses = {i["email"].lower(): i["login"] for i in r.json()["items"]}
    assert addresses == {keep.email.lower(): True, drop.email.lower(): False, work.lower(): False}

    # One row per person in each users table: KEEP's, with DROP's groups folded in (A)
    # and DROP's membership (B).
    async def one_row_each() -> tuple[list[Any], list[Any]] | None:
        rows_a = await api.report_users(a)
        rows_b = await api.report_users(b)
        ids_a = [r["account_id"] for r in rows_a]
        ids_b = [r["account_id"] for r in rows_b]
        if drop.account_id in ids_a + ids_b or keep.account_id not in ids_b:
            return None
        return rows_a, rows_b

    rows_a, rows_b = await wait_for(one_row_each, timeout=45.0, what="the merge in reporting")
    [row_a] = [r for r in rows_a if r["account_id"] == keep.account_id]
    assert [g["group_id"] for g in row_a["groups"]] == [night]
    [row_b] = [r for r in rows_b if r["account_id"] == keep.account_id]
    assert row_b["name"] == "Mara Keep" and row_b["email"].lower() == keep.email.lower()

    # An outside subscriber that rebuilds the member list from the events agrees.
    rebuilt_a, events_a = await _subscriber_view(api, bootstrap, a)
    assert rebuilt_a == _as_table(await api.report_users(a))
    rebuilt_b, _ = await _subscriber_view(api, bootstrap, b)
    assert rebuilt_b == _as_table(await api.report_users(b))
    merged_a = [e for e in events_a if e["type"] == "membership.member_merged"]
    assert [e["data"]["merged_account_id"] for e in merged_a] == [drop.account_id]
    _valid(merged_a[0], MemberMerged)
    assert merged_a[0]["data"]["group_ids"] == [night]
    # No removal or welcome for either account: the merge is its own event.
    after_merge = events_a[events_a.index(merged_a[0]) :]
    assert not [
        e
        for e in after_merge
        if e["type"] in ("membership.member_removed", "membership.member_added")
    ]

    # Every address of DROP finds KEEP in membership: already a member, in A and in B.
    for admin in (a, b):
        results = await invite_ok(api, admin, [drop.email, work])
        assert [r["outcome"] for r in results] == ["already_member", "already_member"], results

    # KEEP sees the training of both accounts: both completions of the course stay.
    async def both_trainings() -> dict[str, set[str]] | None:
        mine = _certificates_by_department(await _my_record(api, kept_token))
        wanted = {a.department_id: {k1, d1}, b.department_id: {d2}}
        return mine if mine == wanted else None

    await wait_for(both_trainings, timeout=45.0, what="KEEP's record with DROP's training")

    # The activity log says an operator merged the accounts.
    r = await api.http.get(
        api.url("reporting", f"/v1/reports/departments/{a.department_id}/activity"),
        params={"action": "merged"},
        headers=a.headers,
    )
    assert r.status_code == 200, r.text
    [entry] = r.json()["items"]
    assert entry["person"]["account_id"] == keep.account_id
    assert entry["by"]["kind"] == "operator"
    assert entry["details"] == {"merged_account_id": drop.account_id}

    # Training that still names DROP (the training system lags) is KEEP's.
    await _send(bootstrap, TRAINING_EVENTS.name, [done(b.department_id, drop.account_id, d3, 4)])

    async def late() -> bool | None:
        mine = _certificates_by_department(await _my_record(api, kept_token))
        return True if mine.get(b.department_id) == {d2, d3} else None

    await wait_for(late, timeout=45.0, what="a late training event of DROP on KEEP's record")

    # -- the same merge again: the same answer, nothing else -------------------------
    again = await _cli_merge(stack, keep.account_id, drop.account_id)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == answer
    # One account_merged, keyed by the merged account (after every earlier event about it).
    [(key, merged_event)] = await _merged_events(bootstrap, keep.account_id, drop.account_id)
    assert key == drop.account_id
    assert merged_event["data"]["merged_at"].startswith(answer["merged_at"][:19])
    _valid(merged_event, AccountMerged)
    rebuilt_again, events_again = await _subscriber_view(api, bootstrap, a)
    assert [e for e in events_again if e["type"] == "membership.member_merged"] == merged_a
    assert rebuilt_again == rebuilt_a == _as_table(await api.report_users(a))


async def test_merges_an_operator_may_not_do(api: Api, stack: Any, bootstrap: str) -> None:
    admin = await api.create_department()
    one = await added_person(api, admin)
    two = await added_person(api, admin)
    three = await added_person(api, admin)
    op = _operator(api)

    r = await _merge_http(api, one.account_id, one.account_id, op)
    assert r.status_code == 422 and problem_type(r) == "merge-into-itself", r.text
    if stack is not None:  # the command says why on stderr, and fails
        refused = await _cli_merge(stack, one.account_id, one.account_id)
        assert refused.returncode == 1 and refused.stdout == "", refused
        assert "identity answered 422" in refused.stderr, refused.stderr
    unknown = str(uuid.uuid4())
    r = await _merge_http(api, unknown, one.account_id, op)
    assert r.status_code == 404 and problem_type(r) == "not-found", r.text
    r = await _merge_http(api, one.account_id, unknown, op)
    assert r.status_code == 404 and problem_type(r) == "not-found", r.text
    # A department admin is not an operator, even for two members of their department.
    r = await _merge_http(api, one.account_id, two.account_id, admin.headers)
    assert r.status_code == 403, r.text
    r = await api.http.post(
        api.url("identity", "/v1/auth/token"), json={"email": admin.email, "password": PASSWORD}
    )
    assert r.status_code == 200  # the admin was refused for what they are, not a bad token

    r = await _merge_http(api, one.account_id, two.account_id, op)
    assert r.status_code == 200, r.text
    # TWO went into ONE: not into THREE as well, and nothing goes into TWO.
    r = await _merge_http(api, three.account_id, two.account_id, op)
    assert r.status_code == 409 and problem_type(r) == "account-already-merged", r.text
    r = await _merge_http(api, two.account_id, three.account_id, op)
    assert r.status_code == 409 and problem_type(r) == "kept-account-merged", r.text
    # Two operators merging the same pair at once: one merge, the same answer for both.
    four = await added_person(api, admin)
    both = await asyncio.gather(
        _merge_http(api, one.account_id, four.account_id, op),
        _merge_http(api, one.account_id, four.account_id, op),
    )
    assert [r.status_code for r in both] == [200, 200], [r.text for r in both]
    assert both[0].json() == both[1].json()
    assert len(await _merged_events(bootstrap, one.account_id, four.account_id)) == 1
    # The refusals changed nothing: THREE is still a member with its own row.
    r = await _merge_http(api, one.account_id, two.account_id, op)
    assert r.status_code == 200, r.text
    row = await wait_for(
        lambda: _row(api, admin, three), timeout=30.0, what="THREE still in the users table"
    )
    assert row["account_id"] == three.account_id


async def _row(api: Api, admin: Admin, person: Person) -> dict[str, Any] | None:
    rows = [r for r in await api.report_users(admin) if r["account_id"] == person.account_id]
    return rows[0] if rows else None
