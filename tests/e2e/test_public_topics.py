"""Nothing secret travels on a topic other teams may read.

The module runs after every other module that keeps the broker (tests/conftest.py
orders it so), and first drives the flows that handle secrets itself, so that it
also holds when it runs alone: registrations (through an invitation and through the
registration link, with a password), an admin's add, an address that already has an
account (added, and as a new department's admin), a bulk upload, an admin's and a
public password reset, a login email change. Then it reads every public topic (and its
dead-letter topic) from the beginning to its end, and fails on any field that holds an
Argon2 hash, a sealed value, a token that one of the captured emails carries, a JWT, or
the account that holds an address (``existing_account_id``).

The same scan run over the private topics must find what it looks for (the sealed
hash of the registration on ``identity.commands.v1``, the existing account on
``identity.answers.v1``): the detector is shown to work on real records.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from prodigy_users.contracts.topics import TOPICS
from tests.e2e.import_support import csv_file, run_import
from tests.support import (
    PASSWORD,
    Api,
    bearer,
    checked_email,
    confirm_email,
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

PUBLIC = [t for t in TOPICS if not t.private]
PRIVATE = [t for t in TOPICS if t.private]

# What a secret looks like in a record, whatever field holds it.
_ARGON2 = re.compile(r"\$argon2(id|i|d)\$")
_SEALED = re.compile(r"\bhpke1k?\.[A-Za-z0-9+/=]{16,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.")
# Field names that hold a secret or an address -> account lookup, when they hold a value.
_SECRET_FIELDS = re.compile(r"password|sealed|token|existing_account", re.IGNORECASE)
# The links of the captured emails: every token a person was sent.
_LINK_TOKENS = re.compile(
    r"(?:/set-password\?token=|/confirm-email\?token=|/email-change\?token=|/invitations/|/join/)"
    r"([A-Za-z0-9_\-]{16,})"
)


@dataclass(frozen=True)
class Finding:
    """A secret found in one record."""

    topic: str
    event_type: str
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.topic} {self.event_type} {self.where}: {self.what}"


# A run of the characters a link's token is made of: a token in a record lies inside one.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_\-]{16,}")


class EmailedTokens:
    """The tokens of the links the session's emails carried, to look for in records.

    Each record is cut into runs of the characters tokens are made of, and each run's
    windows of a token's length are looked up: what ``token in text`` for every token
    finds, in one pass over the record (the scan runs last, with thousands of tokens
    and of records: checking every token in every record took most of its time)."""

    def __init__(self, tokens: set[str]) -> None:
        self.tokens = frozenset(tokens)
        self.lengths = sorted({len(t) for t in tokens})

    def __len__(self) -> int:
        return len(self.tokens)

    def in_text(self, text: str) -> set[str]:
        """The tokens that occur in ``text``, inside longer strings too."""
        found = set()
        for run in _TOKEN_RUN.findall(text):
            for n in self.lengths:
                for start in range(len(run) - n + 1):
                    if (window := run[start : start + n]) in self.tokens:
                        found.add(window)
        return found


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every field of a JSON value, nested ones included."""
    if isinstance(value, dict):
        for key, inner in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, str(key), inner
            yield from _walk(inner, where)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _walk(inner, f"{path}[{i}]")


def findings(topic: str, value: bytes, tokens: EmailedTokens) -> list[Finding]:
    """Every secret in one record's value (its raw bytes, and each of its fields)."""
    text = value.decode("utf-8", "replace")
    try:
        envelope = json.loads(text)
    except ValueError:
        envelope = {"(raw)": text}
    event_type = str(envelope.get("type", "?")) if isinstance(envelope, dict) else "?"
    out = []
    for where, key, inner in _walk(envelope):
        if _SECRET_FIELDS.search(key) and inner not in (None, "", [], {}):
            out.append(Finding(topic, event_type, where, "a field for secrets holds a value"))
        if isinstance(inner, str):
            for name, pattern in (("an Argon2 hash", _ARGON2), ("a sealed value", _SEALED)):
                if pattern.search(inner):
                    out.append(Finding(topic, event_type, where, name))
            if _JWT.search(inner):
                out.append(Finding(topic, event_type, where, "a JWT"))
    # A token may hide anywhere, even inside a longer string: look in the raw record.
    out.extend(
        Finding(topic, event_type, "(record)", f"the token of an emailed link ({t[:6]}...)")
        for t in tokens.in_text(text)
    )
    return out


async def read_topics(
    bootstrap: str, names: list[str], timeout: float = 60.0
) -> dict[str, list[bytes]]:
    """Every record of these topics, from the beginning to their end as of now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        assigned = [
            TopicPartition(name, p)
            for name in names
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        assert assigned, f"none of {names} has partitions"
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: dict[str, list[bytes]] = {name: [] for name in names}
        deadline = time.monotonic() + timeout
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            assert time.monotonic() < deadline, "did not reach the end of the topics in time"
            batches = await consumer.getmany(timeout_ms=500)
            for tp, batch in batches.items():
                records[tp.topic].extend(r.value for r in batch if r.value is not None)
        return records
    finally:
        await consumer.stop()


async def _exercise_the_flows(api: Api) -> dict[str, str]:
    """Drive every flow that handles a secret; what the private topics must then hold."""
    name = f"Secrets {uuid.uuid4().hex[:6]}"
    admin = await api.create_department(name)
    # A registration through an invitation (a password chosen: its hash is sent).
    invitee = await invited_person(api, admin, name="Reg Istered")
    # A registration through the registration link, confirmed by email.
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/registration-link"),
        json={"role": "member"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    self_email = random_email("self")
    token = join_token(r.json()["url"])
    checked_email(await join(api, token, body=registration(self_email, "Sam Self")), self_email)
    await confirm_email(api, self_email)
    # An admin's add, and adding an address that already has an account.
    added = random_email("added")
    assert (await api.add_member(admin, added)).status_code == 201
    other = await api.create_department()
    assert (await api.add_member(other, invitee.email)).status_code == 409
    # A new department whose admin already has an account (joins with it).
    again = await api.create_department(admin_email=invitee.email)
    assert again.account_id == invitee.account_id
    # Registering, through the link, an address that has an account: refused, and
    # its owner is told to sign in and join instead.
    checked_email(await join(api, token, body=registration(invitee.email)), invitee.email)
    await wait_mail_matching(api, invitee.email, subject_has("someone tried to register"))
    # A bulk upload: new addresses and one that has an account.
    status = await run_import(
        api,
        admin,
        csv_file([["Name", "Email"], ["Una Upload", random_email("upload")], ["A", added]]),
    )
    assert sum(status["counts"].values()) >= 2, status
    # An admin's reset and a public one.
    r = await api.http.post(
        api.url(
            "membership",
            f"/v1/departments/{admin.department_id}/members/{invitee.account_id}/password-reset",
        ),
        headers=admin.headers,
    )
    assert r.status_code == 202, r.text
    r = await api.http.post(
        api.url("identity", "/v1/password/reset-requests"), json={"email": self_email}
    )
    assert r.status_code == 202, r.text
    await wait_mail_matching(api, invitee.email, subject_has("reset"))
    await wait_mail_matching(api, self_email, subject_has("reset"))
    # A new login email: its link's token must not reach a public topic (only the
    # change's result does, on identity.events.v1).
    moved = random_email("moved")
    r = await api.http.post(
        api.url("identity", "/v1/me/email-change"),
        json={"email": moved, "password": PASSWORD},
        headers=bearer(await api.login(self_email)),
    )
    assert r.status_code == 202, r.text
    [change] = await wait_mail_matching(api, moved, subject_has("login email"))
    link = re.search(r"/email-change\?token=([A-Za-z0-9_\-]+)", change["text"])
    assert link, change["text"]
    r = await api.http.post(
        api.url("identity", "/v1/email-change-confirmations"), json={"token": link.group(1)}
    )
    assert r.status_code == 200, r.text
    return {"registered": invitee.email, "existing_account": invitee.account_id}


async def test_no_public_topic_carries_a_secret(api: Api, bootstrap: str) -> None:
    expected = await _exercise_the_flows(api)
    tokens = EmailedTokens(
        {
            match
            for mail in await api.mails()
            for match in _LINK_TOKENS.findall(mail["text"] + (mail.get("html") or ""))
        }
    )
    assert len(tokens) >= 5, "the flows emailed links, whose tokens the scan looks for"

    async def everything_published() -> dict[str, list[bytes]] | None:
        # The outboxes publish a moment after the flows end: wait until the last
        # answers (the batch's, the rejection's) are on the private topics.
        records = await read_topics(bootstrap, [t.name for t in PRIVATE])
        private = b"".join(v for values in records.values() for v in values)
        wanted = expected["existing_account"].encode()
        return records if wanted in private and b"sealed_password_hash" in private else None

    private_records = await wait_for(everything_published, timeout=60, what="private topics")

    # The detector finds the secrets where they belong: sealed hashes on the commands,
    # the existing account on identity's answers.
    commands = [
        f
        for value in private_records["identity.commands.v1"]
        for f in findings("identity.commands.v1", value, tokens)
    ]
    assert any(f.what == "a sealed value" for f in commands), commands
    assert any(f.where == "data.sealed_password_hash" for f in commands), commands
    answers = [
        f
        for value in private_records["identity.answers.v1"]
        for f in findings("identity.answers.v1", value, tokens)
    ]
    assert any(f.where == "data.existing_account_id" for f in answers), answers
    # No hash in the clear on the commands topic either (it is private, but nothing
    # needs it there in the clear).
    assert not any(f.what == "an Argon2 hash" for f in commands), commands

    names = [t.name for t in PUBLIC] + [t.dlq for t in PUBLIC]
    records = await read_topics(bootstrap, names)
    assert records["membership.events.v1"], "the public topics were read"
    found = [
        str(f)
        for topic, values in records.items()
        for value in values
        for f in findings(topic, value, tokens)
    ]
    assert found == [], "secrets on public topics:\n  " + "\n  ".join(found[:50])


def test_the_detector_finds_each_kind_of_secret() -> None:
    token = "Zx9" + "a" * 40
    record = {
        "type": "x.y",
        "data": {
            "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
            "note": "hpke1." + "A" * 40,
            "auth": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.sig",
            "items": [{"existing_account_id": str(uuid.uuid4())}],
            "url": f"https://x/invitations/{token}",
        },
    }
    tokens = EmailedTokens({token, "Other" + "b" * 30})
    kinds = {f.what for f in findings("t", json.dumps(record).encode(), tokens)}
    assert kinds == {
        "a field for secrets holds a value",
        "an Argon2 hash",
        "a sealed value",
        "a JWT",
        f"the token of an emailed link ({token[:6]}...)",
    }
    clean = {"type": "x.y", "data": {"password_hash": None, "name": "Ana", "count": 3}}
    assert findings("t", json.dumps(clean).encode(), tokens) == []
    # Inside a longer string, and more than once in a record: found, once.
    hidden = {"type": "x.y", "data": {"a": f"ab{token}cd", "b": f"-{token}"}}
    assert [f.what for f in findings("t", json.dumps(hidden).encode(), tokens)] == [
        f"the token of an emailed link ({token[:6]}...)"
    ]
