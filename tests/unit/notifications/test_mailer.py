"""The hand-written MIME message, the DATA wire format and what each SMTP failure
means for an email (retry, or give up at once)."""

from __future__ import annotations

import asyncio
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage, MIMEPart

import aiosmtplib
import pytest

from prodigy_users.notifications.mailer import BOUNDARY, build_message, delivery_error
from prodigy_users.notifications.smtp_session import Refused, Reply, wire_body
from prodigy_users.notifications.templates import Rendered

TEXT = "Hello Zoë,\n\n.a line that starts with a dot\nTrailing space \n" + "x" * 300 + "\n"
HTML = "<p>Hello Zoë, =3D is not an escape here</p>\n<p>" + "y" * 300 + "</p>\n"


def content(part: MIMEPart | None) -> str:
    """A part's text, line ends as written (the wire has CRLF)."""
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_the_message_reads_back_exactly_with_the_standard_parser() -> None:
    email_id = uuid.uuid4()
    rendered = Rendered(subject="Your account for Zürich Rettungsdienst", text=TEXT, html=HTML)
    built = build_message(
        rendered,
        sender="Prodigy Zentrale <no-reply@p.dev>",
        to="zoe@example.org",
        email_id=email_id,
    )
    message = parsed(built.data)
    assert message["Subject"] == "Your account for Zürich Rettungsdienst"
    assert message["From"].addresses[0].display_name == "Prodigy Zentrale"
    assert message["To"] == "zoe@example.org"
    assert message["Message-ID"] == f"<{email_id}@p.dev>" == built.message_id
    assert message["Date"] is not None and message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    assert content(message.get_body(("plain",))) == TEXT
    assert content(message.get_body(("html",))) == HTML
    assert (built.sender, built.to, built.smtputf8) == ("no-reply@p.dev", "zoe@example.org", False)


def test_the_wire_format_is_7bit_with_short_lines_and_an_unambiguous_boundary() -> None:
    rendered = Rendered(subject="S" * 200, text=TEXT, html=HTML)
    data = build_message(rendered, sender="no-reply@p.dev", to="a@example.org").data
    assert data.isascii()
    lines = data.split(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in lines) <= 78
    assert sum(line == b"--" + BOUNDARY.encode() for line in lines) == 2
    assert parsed(data)["Subject"] == "S" * 200


def test_a_name_cannot_inject_a_header_or_break_the_parts() -> None:
    rendered = Rendered(
        subject="Hi", text=f"--{BOUNDARY}\nBcc: x@evil.test\n", html=f"--{BOUNDARY}--\n"
    )
    message = parsed(build_message(rendered, sender="n@p.dev", to="a@example.org").data)
    assert message["Bcc"] is None
    assert content(message.get_body(("plain",))) == rendered.text


def test_an_internationalised_recipient_needs_smtputf8() -> None:
    rendered = Rendered(subject="Hi", text="t\n", html="<p>h</p>\n")
    built = build_message(rendered, sender="n@p.dev", to="zoë@example.org")
    assert built.smtputf8
    assert b"To: zo\xc3\xab@example.org\r\n" in built.data


@pytest.mark.parametrize(
    "address", ["a b@example.org", "a@example.org>\r\nRCPT TO:<b@example.org", "<a@b>", "nobody"]
)
def test_an_address_smtp_cannot_carry_is_refused(address: str) -> None:
    rendered = Rendered(subject="Hi", text="t\n", html="<p>h</p>\n")
    with pytest.raises(ValueError, match="not an address"):
        build_message(rendered, sender="n@p.dev", to=address)


def test_the_data_section_doubles_leading_dots_and_ends_with_a_lone_dot() -> None:
    assert wire_body(b"a\r\n.b\n..c\rd") == b"a\r\n..b\r\n...c\r\nd\r\n.\r\n"
    assert wire_body(b"x\r\n") == b"x\r\n.\r\n"


@pytest.mark.parametrize(
    ("failure", "permanent", "words"),
    [
        (Refused("rcpt", Reply(550, "5.1.1 Mailbox unavailable")), True, "recipient refused: 550"),
        (Refused("rcpt", Reply(451, "4.7.1 Greylisted")), False, "recipient refused: 451"),
        (Refused("data", Reply(552, "Message too big")), True, "message refused: 552"),
        (Refused("data", Reply(451, "Try later")), False, "message refused: 451"),
        # Refusing our sender is the relay's (or our configuration's) problem: retry.
        (Refused("mail", Reply(553, "Sender not allowed")), False, "sender refused: 553"),
        (aiosmtplib.SMTPResponseException(530, "Authentication required"), False, "530"),
        (aiosmtplib.SMTPConnectError("Connect call failed"), False, "Connect call failed"),
        (ConnectionRefusedError(111, "refused"), False, "ConnectionRefusedError"),
        (asyncio.IncompleteReadError(b"", 2), False, "hung up"),
        (TimeoutError(), False, "did not answer"),
        (ValueError("bad address"), True, "address cannot be sent"),
    ],
)
def test_what_each_failure_means(failure: BaseException, permanent: bool, words: str) -> None:
    error = delivery_error(failure)
    assert error.permanent is permanent
    assert words in error.reason
    assert error.tried
