"""Prometheus metrics of one service process, served at ``/metrics``.

One registry per runtime (not the library's global one), so tests and several
services in one process never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The series every service exposes."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http = Histogram(
            "prodigy_http_request_duration_seconds",
            "HTTP request latency by route and status.",
            ["service", "route", "method", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.consumed = Counter(
            "prodigy_events_consumed",
            "Messages read by consumers, by topic, type and outcome "
            "(applied, duplicate, skipped, dead_lettered).",
            ["service", "topic", "type", "outcome"],
            registry=self.registry,
        )
        self.produced = Counter(
            "prodigy_events_produced",
            "Outbox rows published to Kafka, by topic.",
            ["service", "topic"],
            registry=self.registry,
        )
        self.handler_errors = Counter(
            "prodigy_handler_errors",
            "Handler failures (each attempt), by message type.",
            ["service", "type"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "prodigy_dead_letters",
            "Messages sent to a dead-letter topic, by original topic.",
            ["service", "topic"],
            registry=self.registry,
        )
        self.dead_letters_unreplayed = Gauge(
            "prodigy_dead_letters_unreplayed",
            "Dead letters kept in the service's database that no replay has applied yet "
            "(prodigy-users dlq list / replay).",
            ["service"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "prodigy_outbox_backlog",
            "Outbox rows not yet published.",
            ["service"],
            registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "prodigy_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row (0 when none).",
            ["service"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "prodigy_consumer_lag",
            "Records between a consumer's position and the partition's high watermark.",
            ["service", "topic", "partition"],
            registry=self.registry,
        )
        self.emails = Counter(
            "prodigy_emails",
            "Email delivery attempts by outcome (sent, retrying, failed).",
            ["service", "status"],
            registry=self.registry,
        )
        self.service = service

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one HTTP request."""
        self.http.labels(self.service, route, method, str(status)).observe(seconds)
