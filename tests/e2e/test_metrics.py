"""Every service serves Prometheus metrics, and they move with the system."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import Api, random_email, wait_for

pytestmark = pytest.mark.e2e

SERVICES = ("identity", "membership", "notifications", "reporting")


async def _scrape(api: Api, service: str) -> str:
    r = await api.http.get(api.url(service, "/metrics"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def _sum(text: str, metric: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(metric + "{") and not line.startswith(metric + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_name_the_series_and_move_when_a_user_is_added(api: Api) -> None:
    admin = await api.create_department()
    before = {s: await _scrape(api, s) for s in SERVICES}
    for text in before.values():
        for series in (
            "prodigy_http_request_duration_seconds",
            "prodigy_events_consumed_total",
            "prodigy_outbox_backlog",
            "prodigy_outbox_oldest_age_seconds",
            "prodigy_dead_letters_unreplayed",
        ):
            assert series in text, series

    email = random_email("metrics")
    assert (await api.add_member(admin, email)).status_code == 201
    await api.wait_mail(email)
    await api.wait_reported(admin, email)

    after = {s: await _scrape(api, s) for s in SERVICES}
    route = "/v1/departments/{dept}/members"
    assert _sum(after["membership"], "prodigy_http_request_duration_seconds_count", route=route) > (
        _sum(before["membership"], "prodigy_http_request_duration_seconds_count", route=route)
    )
    assert re.search(r'route="/v1/departments/\{dept\}/members"', after["membership"])
    assert _sum(
        after["membership"], "prodigy_events_produced_total", topic="identity.commands.v1"
    ) > (_sum(before["membership"], "prodigy_events_produced_total", topic="identity.commands.v1"))
    assert _sum(
        after["identity"],
        "prodigy_events_consumed_total",
        type="identity.create_account",
        outcome="applied",
    ) > _sum(
        before["identity"],
        "prodigy_events_consumed_total",
        type="identity.create_account",
        outcome="applied",
    )
    assert _sum(after["reporting"], "prodigy_events_consumed_total", outcome="applied") > _sum(
        before["reporting"], "prodigy_events_consumed_total", outcome="applied"
    )
    assert _sum(after["notifications"], "prodigy_emails_total", status="sent") > _sum(
        before["notifications"], "prodigy_emails_total", status="sent"
    )


async def test_outbox_backlog_grows_while_the_broker_is_down_then_drains(
    api: Api, controllable: Any
) -> None:
    admin = await api.create_department()
    await controllable.stop_broker()
    try:
        r = await api.add_member(admin, random_email("backlog"))
        assert r.status_code == 202
        text = await _scrape(api, "membership")
        assert _sum(text, "prodigy_outbox_backlog") >= 1
        assert _sum(text, "prodigy_outbox_oldest_age_seconds") > 0
    finally:
        await controllable.start_broker()

    async def drained() -> bool:
        return _sum(await _scrape(api, "membership"), "prodigy_outbox_backlog") == 0

    await wait_for(drained, timeout=60, what="the membership outbox to drain")
