"""Idempotency-Key: which keys are valid, what makes two requests the same, and what a
request gets when its key was used before (the middleware's decisions, without I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prodigy_users.runtime.errors import InvalidInput
from prodigy_users.runtime.idempotency_rules import (
    KEY_TTL,
    MAX_KEY_LENGTH,
    PROBLEMS,
    Held,
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    decide,
    fingerprint,
    kept_headers,
    parse_key,
    replay_headers,
    scoped,
    worth_keeping,
)
from prodigy_users.runtime.problems import problem_of

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


# -- the key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "key"),
    [
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        # The draft's structured-field string: the quotes are not part of the key.
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('"a\\"b\\\\c"', 'a"b\\c'),
        ("  padded\t", "padded"),
        ("x", "x"),
        ("!" * MAX_KEY_LENGTH, "!" * MAX_KEY_LENGTH),
    ],
)
def test_valid_keys_bare_or_quoted(sent: str, key: str) -> None:
    assert parse_key([sent]) == key


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([""], "must not be empty"),
        (['""'], "must not be empty"),
        (["x" * (MAX_KEY_LENGTH + 1)], "at most 255 characters"),
        (["two words"], "visible ASCII"),
        (["tab\tinside"], "visible ASCII"),
        (["nul\x00"], "visible ASCII"),
        (["clé"], "visible ASCII"),
        (["a", "b"], "send the header once"),
    ],
)
def test_invalid_keys_are_refused_naming_the_header(values: list[str], message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_key(values)
    problem = problem_of(refused.value, {}).body()
    assert problem["status"] == 422 and problem["type"].endswith("/validation")
    [error] = problem["errors"]
    assert error["field"] == "Idempotency-Key"
    assert message in error["message"]
    assert "Idempotency-Key" in problem["detail"]


def test_keys_are_the_callers_own() -> None:
    assert scoped("a1", "k") != scoped("a2", "k")
    assert scoped("anonymous", "k") == "anonymous:k"


# -- the same request -----------------------------------------------------------------------


def _fp(
    method: str = "POST",
    path: str = "/v1/departments/d/members",
    query: bytes = b"",
    content_type: str = "application/json",
    body: bytes = b'{"name": "Pat"}',
) -> str:
    return fingerprint(method, path, query, content_type, body)


def test_the_same_request_has_the_same_fingerprint_and_any_change_another() -> None:
    assert _fp() == _fp()
    others = {
        _fp(method="PUT"),
        _fp(path="/v1/departments/e/members"),
        _fp(query=b"dry_run=true"),
        _fp(body=b'{"name": "Pam"}'),
        _fp(body=b""),
    }
    assert _fp() not in others and len(others) == 5
    # Parts are length-prefixed: moving bytes from one part into the next changes it.
    assert fingerprint("POST", "/a", b"b", "", b"") != fingerprint("POST", "/ab", b"", "", b"")


def _multipart(boundary: str, content: bytes) -> tuple[str, bytes]:
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="users.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def test_a_file_sent_again_with_a_new_boundary_is_the_same_request() -> None:
    first = _multipart("a1b2c3d4e5f6", b"Name,Email\nPat,pat@example.org\n")
    again = _multipart("ffeeddccbbaa9988", b"Name,Email\nPat,pat@example.org\n")
    quoted = ('multipart/form-data; boundary="ffeeddccbbaa9988"', again[1])
    other = _multipart("ffeeddccbbaa9988", b"Name,Email\nPam,pam@example.org\n")
    path = "/v1/departments/d/imports"

    assert first[1] != again[1]
    same = {fingerprint("POST", path, b"", ct, body) for ct, body in (first, again, quoted)}
    assert len(same) == 1
    assert fingerprint("POST", path, b"", *other) not in same


# -- what a request finds -------------------------------------------------------------------


def _held(
    state: str = "done",
    fp: str = "fp",
    age: timedelta = timedelta(minutes=1),
    lease_left: timedelta = timedelta(seconds=-30),
) -> Held:
    return Held(state, fp, NOW - age, NOW + lease_left)  # type: ignore[arg-type]


def test_a_finished_request_is_replayed_to_the_same_request() -> None:
    assert decide(_held("done"), "fp", NOW) == "replay"


def test_a_different_request_with_the_key_is_a_mismatch_whatever_its_state() -> None:
    assert decide(_held("done"), "other", NOW) == "mismatch"
    assert decide(_held("in_progress", lease_left=timedelta(seconds=10)), "other", NOW) == (
        "mismatch"
    )
    # Even once the holder died: the key still belongs to the first request.
    assert decide(_held("in_progress"), "other", NOW) == "mismatch"


def test_a_running_request_holds_its_key_until_its_lease_ends() -> None:
    running = _held("in_progress", lease_left=timedelta(seconds=10))
    assert decide(running, "fp", NOW) == "in_use"
    # The holder died (its lease was not renewed): the same request takes over.
    assert decide(_held("in_progress", lease_left=timedelta(0)), "fp", NOW) == "run"
    assert decide(_held("in_progress", lease_left=timedelta(seconds=-1)), "fp", NOW) == "run"


def test_a_key_older_than_a_day_is_forgotten() -> None:
    assert timedelta(hours=24) == KEY_TTL
    for state in ("done", "in_progress"):
        old = _held(state, age=KEY_TTL, lease_left=timedelta(hours=1))
        assert decide(old, "fp", NOW) == "run"
        assert decide(old, "anything else", NOW) == "run"
    young = _held("done", age=KEY_TTL - timedelta(seconds=1))
    assert decide(young, "fp", NOW) == "replay"


def test_answers_worth_keeping_and_what_a_replay_repeats() -> None:
    assert worth_keeping(201) and worth_keeping(202) and worth_keeping(409)
    assert worth_keeping(422) and worth_keeping(499)
    assert not worth_keeping(500) and not worth_keeping(503)
    assert not worth_keeping(401), "a request nobody was authenticated for is not kept"

    sent = [
        (b"content-type", b"application/json"),
        (b"Location", b"/v1/operations/1"),
        (b"retry-after", b"3"),
        (b"x-correlation-id", b"abc"),
        (b"set-cookie", b"nope"),
        (b"content-length", b"42"),
    ]
    kept = kept_headers(sent)
    assert kept == [
        ["content-type", "application/json"],
        ["location", "/v1/operations/1"],
        ["retry-after", "3"],
    ]
    assert replay_headers(kept) == [
        (b"content-type", b"application/json"),
        (b"location", b"/v1/operations/1"),
        (b"retry-after", b"3"),
        (b"idempotent-replayed", b"true"),
    ]


def test_the_middlewares_own_problems() -> None:
    mismatch = problem_of(IdempotencyKeyMismatch(), PROBLEMS)
    assert (mismatch.status, mismatch.slug) == (422, "idempotency-key-mismatch")
    in_use = problem_of(IdempotencyKeyInUse(retry_after=1), PROBLEMS)
    assert (in_use.status, in_use.slug) == (409, "idempotency-key-in-use")
    assert in_use.headers == {"Retry-After": "1"}
