"""One "add a user" is one trace across the services: the HTTP request, every Kafka
hop (producer span -> consumer span, the context in the record headers) and each
service that takes part. The services export to the session's OTLP receiver."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.otel import OtlpReceiver, ReceivedSpan
from tests.support import Api, random_email, wait_for

pytestmark = pytest.mark.e2e

SERVICES = {"membership", "identity", "notifications", "reporting"}


def chain(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    """The span and its ancestors, up to the first whose parent is not in the trace."""
    out = [span]
    while out[-1].parent_span_id in by_id:
        out.append(by_id[out[-1].parent_span_id])
        assert len(out) < 100, "a parent cycle"
    return out


def describe(spans: list[ReceivedSpan]) -> str:
    """The trace as an indented tree (in assertion messages)."""
    by_parent: dict[str | None, list[ReceivedSpan]] = {}
    for s in spans:
        by_parent.setdefault(s.parent_span_id, []).append(s)
    ids = {s.span_id for s in spans}
    lines: list[str] = []

    def walk(span: ReceivedSpan, depth: int) -> None:
        lines.append(f"{'  ' * depth}{span.service}: {span.kind} {span.name}")
        for child in by_parent.get(span.span_id, []):
            walk(child, depth + 1)

    for root in [s for s in spans if s.parent_span_id not in ids]:
        walk(root, 0)
    return "\n".join(lines)


def consumed(spans: list[ReceivedSpan], service: str, type_: str) -> ReceivedSpan | None:
    """The span in which ``service`` applied a ``type_`` message (a redelivery or a
    batch applied again after another message failed may add more spans)."""
    found = [
        s
        for s in spans
        if s.service == service
        and s.kind == "CONSUMER"
        and s.attributes.get("prodigy.event.type") == type_
        and s.attributes.get("prodigy.outcome") == "applied"
    ]
    return found[0] if found else None


async def test_adding_a_user_is_one_trace_through_every_service(
    api: Api, stack: Any, otlp_receiver: OtlpReceiver
) -> None:
    if stack is None:
        pytest.skip("PRODIGY_TEST_TARGET=external: its services do not export to this receiver")
    admin = await api.create_department()
    email = random_email("traced")
    # The caller's own span: the session samples only requests that arrive sampled.
    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)

    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/members"),
        json={"name": "Tracy Trace", "email": email, "role": "member"},
        headers={**admin.headers, "traceparent": f"00-{trace_id}-{caller}-01"},
    )
    # 202: identity answered after the API's wait; the flow (and the trace) goes on.
    assert r.status_code in (201, 202), r.text
    await api.wait_mail(email)
    await api.wait_reported(admin, email)

    wanted = [
        ("identity", "identity.create_account"),
        ("membership", "identity.account_created"),
        ("notifications", "identity.password_link_issued"),
        ("reporting", "membership.member_added"),
    ]

    def mailed(spans: list[ReceivedSpan]) -> ReceivedSpan | None:
        found = [s for s in spans if s.service == "notifications" and s.name == "send email"]
        return found[0] if found else None

    async def complete() -> list[ReceivedSpan] | None:
        spans = otlp_receiver.spans(trace_id)
        ids = {s.span_id for s in spans} | {caller}
        done = all(consumed(spans, *w) for w in wanted) and mailed(spans) is not None
        if done and all(s.parent_span_id in ids for s in spans):
            return spans
        return None

    try:
        spans = await wait_for(complete, timeout=60, what=f"the spans of trace {trace_id}")
    except AssertionError:
        print(describe(otlp_receiver.spans(trace_id)))
        raise
    tree = describe(spans)
    by_id = {s.span_id: s for s in spans}

    # One root: membership's request, under the caller's span.
    [request] = [s for s in spans if s.parent_span_id == caller]
    assert (request.service, request.kind) == ("membership", "SERVER"), tree
    assert request.name == "POST /v1/departments/{dept}/members", tree
    assert request.attributes["http.response.status_code"] == r.status_code
    assert {s.service for s in spans} >= SERVICES, tree

    # Every Kafka hop: the consumer's span is a child of the producer's span for
    # that very record, and leads back to the request.
    consumers = [s for s in spans if s.kind == "CONSUMER"]
    for span in consumers:
        parent = by_id[str(span.parent_span_id)]
        assert parent.kind == "PRODUCER", tree
        for attribute in ("messaging.destination.name", "messaging.message.id"):
            assert span.attributes[attribute] == parent.attributes[attribute], tree
        assert chain(span, by_id)[-1] is request, tree

    # The read model's row came through three hops: membership -> identity ->
    # membership -> reporting, each hop's span under the previous one's.
    reported = consumed(spans, "reporting", "membership.member_added")
    assert reported is not None
    hops = [
        (s.service, s.attributes["messaging.destination.name"])
        for s in chain(reported, by_id)
        if s.kind == "CONSUMER"
    ]
    assert hops == [
        ("reporting", "membership.events.v1"),
        ("membership", "identity.events.v1"),
        ("identity", "identity.commands.v1"),
    ], tree

    # ... and to the email: its send, later, in the delivery worker, continues the
    # trace of the credentials event that asked for it.
    send = mailed(spans)
    assert send is not None and send.kind == "CLIENT", tree
    assert send.attributes["email.outcome"] == "sent", tree
    asked = by_id[str(send.parent_span_id)]
    assert (asked.service, asked.kind) == ("notifications", "CONSUMER"), tree
    assert asked.attributes["messaging.destination.name"] == "identity.credentials.v1", tree
    assert chain(send, by_id)[-1] is request, tree
