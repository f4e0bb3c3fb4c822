"""Domain errors become problem details through one table; the workers' shared loop."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from prodigy_users.runtime import loops, problems
from prodigy_users.runtime.errors import (
    DomainError,
    ProblemTable,
    ProblemType,
    Unauthenticated,
    WeakPassword,
    problem_type,
)
from prodigy_users.runtime.problems import MEDIA_TYPE, PROBLEM_BASE, problem_of


class SeatTaken(DomainError):
    default_detail = "Someone sits there."


class WindowSeatTaken(SeatTaken):
    pass


class Unlisted(DomainError):
    pass


TABLE: ProblemTable = {SeatTaken: ProblemType(409, "seat-taken", "Seat taken")}


def test_an_error_takes_its_own_row_or_its_nearest_base_classes() -> None:
    assert problem_type(SeatTaken(), TABLE) == TABLE[SeatTaken]
    assert problem_type(WindowSeatTaken(), TABLE) == TABLE[SeatTaken]
    assert problem_type(Unlisted(), TABLE) is None


def test_the_problem_carries_detail_fields_extra_and_retry_after() -> None:
    error = SeatTaken(
        "Row 3 is full.",
        errors=[{"field": "seat", "message": "taken"}],
        retry_after=42,
        extra={"next_free": "4A"},
    )
    problem = problem_of(error, TABLE)
    assert problem.body("/seats") == {
        "type": PROBLEM_BASE + "seat-taken",
        "title": "Seat taken",
        "status": 409,
        "detail": "Row 3 is full.",
        "instance": "/seats",
        "errors": [{"field": "seat", "message": "taken"}],
        "next_free": "4A",
    }
    assert problem.headers == {"Retry-After": "42"}
    assert problem_of(SeatTaken(), TABLE).detail == "Someone sits there."


def test_shared_errors_need_no_row_and_unmapped_ones_are_internal_errors() -> None:
    assert problem_of(WeakPassword(), {}).status == 422
    unauthenticated = problem_of(Unauthenticated(), {})
    assert (unauthenticated.status, unauthenticated.headers) == (
        401,
        {"WWW-Authenticate": "Bearer"},
    )
    unlisted = problem_of(Unlisted(), TABLE)
    assert (unlisted.status, unlisted.slug) == (500, "internal-error")


class WrongPassword(DomainError):
    default_detail = "Email or password is wrong."


def test_only_a_missing_or_bad_bearer_token_is_answered_with_a_challenge() -> None:
    table: ProblemTable = {WrongPassword: ProblemType(401, "invalid-credentials", "Invalid")}
    refused = problem_of(WrongPassword(), table)
    assert (refused.status, refused.headers) == (401, None)
    assert problem_of(Unauthenticated("Expired."), table).headers == {"WWW-Authenticate": "Bearer"}


async def test_an_installed_app_answers_domain_errors_as_problem_json() -> None:
    app = FastAPI()
    problems.install(app, TABLE)

    @app.get("/seats/{seat}")
    async def take(seat: str) -> dict[str, str]:
        raise WindowSeatTaken(f"Seat {seat} is taken.", retry_after=5)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/seats/3A")
    assert r.status_code == 409
    assert r.headers["content-type"] == MEDIA_TYPE
    assert r.headers["retry-after"] == "5"
    assert r.json()["detail"] == "Seat 3A is taken."
    assert r.json()["type"] == PROBLEM_BASE + "seat-taken"


async def test_keep_running_retries_failures_recovers_and_idles_when_nothing_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", no_wait)
    results: list[object] = [OSError("db away"), OSError("still away"), True, False, None]
    recovered = 0
    idled = 0
    done = asyncio.Event()

    async def step() -> bool | None:
        if not results:
            done.set()
            await asyncio.Event().wait()  # parked until cancelled
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        assert result is None or isinstance(result, bool)
        return result

    async def recover() -> None:
        nonlocal recovered
        recovered += 1

    async def idle() -> None:
        nonlocal idled
        idled += 1

    task = asyncio.create_task(loops.keep_running(step, what="test", idle=idle, recover=recover))
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Two failures: two recoveries, a growing delay; then a busy step (no idle) and
    # two idle ones.
    assert recovered == 2
    assert waits == [loops.FIRST_RETRY_S, loops.FIRST_RETRY_S * 2]
    assert idled == 2
