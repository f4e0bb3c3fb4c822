"""SMTP sessions against a real SMTP server (the aiosmtpd mail capture): pipelined and
step by step, refusals inside a run, a relay that hangs up mid-run, and the capture's
own side (PIPELINING, indexed HTTP view, its file)."""

from __future__ import annotations

import json
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from prodigy_users.notifications.mailer import MailMessage, SmtpPool, build_message
from prodigy_users.notifications.settings import Settings
from prodigy_users.notifications.smtp_session import Broken, Refused, SmtpSession
from prodigy_users.notifications.templates import Rendered
from prodigy_users.stack.mailcapture import MailCapture, parse_message
from prodigy_users.stack.supervisor import free_ports

pytestmark = pytest.mark.timeout(120)


def settings(capture: MailCapture) -> Settings:
    return Settings(smtp_port=capture.smtp_port, smtp_timeout_s=10)


def message(to: str, text: str = "Hello\n.dotted line\n") -> MailMessage:
    rendered = Rendered(subject=f"For {to}", text=text, html=f"<p>{text}</p>\n")
    return build_message(rendered, sender="no-reply@p.dev", to=to, email_id=uuid.uuid4())


def addresses(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"m{i}-{tag}@example.org" for i in range(n)]


@pytest.mark.parametrize("pipelined", [True, False])
async def test_a_run_with_refusals_inside_it_keeps_the_session(
    capture: MailCapture, pipelined: bool
) -> None:
    ok1, bounced, ok2, greylisted, ok3 = addresses(5)
    capture.reject(bounced)
    capture.reject(greylisted, "451 4.7.1 Greylisted")
    session = await SmtpSession.open(settings(capture))
    try:
        assert session.pipelining, "the capture offers PIPELINING"
        session.pipelining = pipelined
        run = [message(a) for a in (ok1, bounced, ok2, greylisted, ok3)]
        results = await session.send(run)
        assert results[0] is None and results[2] is None and results[4] is None
        assert isinstance(results[1], Refused) and results[1].stage == "rcpt"
        assert results[1].reply.code == 550
        assert isinstance(results[3], Refused) and results[3].reply.code == 451
        # The session is clean for the next run.
        assert await session.send([message(ok1, "again\n")]) == [None]
        assert session.alive and session.sent == 6
    finally:
        await session.close()
    assert [m["to"] for m in capture.messages] == [[ok1], [ok2], [ok3], [ok1]]
    assert capture.connections == 1
    first = capture.messages[0]
    assert first["text"] == "Hello\n.dotted line\n", "dot-stuffing undone by the relay"
    assert first["message_id"] == run[0].message_id


async def test_a_relay_that_hangs_up_mid_run_breaks_it_where_it_was(capture: MailCapture) -> None:
    before, closing, after = addresses(3)
    capture.reject(closing, "421 4.3.2 Shutting down")
    session = await SmtpSession.open(settings(capture))
    with pytest.raises(Broken) as info:
        await session.send([message(before), message(closing), message(after)])
    assert info.value.results == [None], "the first went out"
    assert not info.value.content_sent
    assert not session.alive
    await session.close()

    # The pool turns that into: sent, a failed attempt (retry), not tried.
    pool = SmtpPool(settings(capture))
    try:
        results = await pool([message(before), message(closing), message(after)])
    finally:
        await pool.close()
    assert results[0] is None
    assert results[1] is not None and results[1].tried and not results[1].permanent
    assert results[2] is not None and not results[2].tried
    assert [m["to"] for m in capture.messages] == [[before], [before]]


async def test_the_relay_being_away_fails_every_email_of_the_run_for_a_retry() -> None:
    [port] = free_ports(1)
    pool = SmtpPool(Settings(smtp_port=port, smtp_timeout_s=5))
    results = await pool([message(a) for a in addresses(2)])
    assert len(results) == 2
    for error in results:
        assert error is not None and error.tried and not error.permanent


async def test_the_capture_reads_what_the_standard_library_reads(capture: MailCapture) -> None:
    built = message("zoe@example.org", "Grüße, Zoë\n" + "long " * 40 + "\n")
    ours = parse_message(built.data, "no-reply@p.dev", ["zoe@example.org"])
    theirs = message_from_bytes(built.data, policy=policy.default)
    assert isinstance(theirs, EmailMessage)
    plain, html = theirs.get_body(("plain",)), theirs.get_body(("html",))
    assert plain is not None and html is not None
    assert ours["text"] == plain.get_content().replace("\r\n", "\n")
    assert ours["html"] == html.get_content().replace("\r\n", "\n")
    assert ours["subject"] == theirs["Subject"] == "For zoe@example.org"
    assert ours["from"] == "no-reply@p.dev" and ours["message_id"] == built.message_id


async def test_the_http_view_reads_on_from_an_id_and_by_recipient(
    capture: MailCapture, tmp_path: Path
) -> None:
    people = addresses(30)
    pool = SmtpPool(settings(capture))
    try:
        assert await pool([message(p) for p in people]) == [None] * 30
    finally:
        await pool.close()
    async with httpx.AsyncClient(base_url=capture.url) as http:
        everything = (await http.get("/messages")).json()
        assert [m["to"][0] for m in everything] == people
        tenth = everything[9]["id"]
        rest = (await http.get("/messages", params={"after": tenth})).json()
        assert [m["to"][0] for m in rest] == people[10:]
        assert (await http.get("/messages", params={"after": everything[-1]["id"]})).json() == []
        one = (await http.get("/messages", params={"to": people[3].upper()})).json()
        assert one == [everything[3]]
        none = (await http.get("/messages", params={"to": people[3], "after": tenth})).json()
        assert none == []
    found = await capture.wait_for(lambda m: m["to"][0] in people[-3:], count=3, within=5)
    assert [m["to"][0] for m in found] == people[-3:]
    capture.store.flush()
    lines = (tmp_path / "mail.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [m["id"] for m in everything]


@pytest.mark.parametrize("pipelined", [True, False])
async def test_each_answer_is_told_as_it_is_read_before_the_run_ends(
    capture: MailCapture, pipelined: bool
) -> None:
    # The recorder hears of each message the moment the relay answers it: while the
    # rest of the run is still going, the capture already holds what was told.
    ok1, bounced, ok2 = addresses(3)
    capture.reject(bounced)
    told: list[tuple[int, bool, int]] = []

    def on_result(index: int, result: Refused | None) -> None:
        told.append((index, result is None, len(capture.messages)))

    session = await SmtpSession.open(settings(capture))
    try:
        session.pipelining = pipelined
        before = len(capture.messages)
        results = await session.send([message(a) for a in (ok1, bounced, ok2)], on_result)
    finally:
        await session.close()
    assert [(i, ok) for i, ok, _ in told] == [(0, True), (1, False), (2, True)]
    assert [r is None for r in results] == [True, False, True]
    # Told of the first once the relay had it, before the third was handed over.
    assert told[0][2] == before + 1 and told[2][2] == before + 2

    # Through the pool, as the delivery worker sees it: an error or None, per index.
    pool = SmtpPool(settings(capture))
    heard: list[tuple[int, str | None]] = []
    try:
        errors = await pool(
            [message(a) for a in addresses(2)],
            lambda i, e: heard.append((i, None if e is None else e.reason)),
        )
    finally:
        await pool.close()
    assert heard == [(0, None), (1, None)] and errors == [None, None]
