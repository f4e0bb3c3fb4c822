"""Settings shared by every service, read from ``PRODIGY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .throttle_rules import IPNetwork, trusted_networks


class HttpSettings(BaseSettings):
    """What every HTTP process (the four services and the console) is told: who it is,
    where it listens, how large a body it takes, whom it trusts for client addresses,
    and how it logs."""

    model_config = SettingsConfigDict(env_prefix="PRODIGY_", extra="ignore")

    service_name: str = "service"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    max_body_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        description="Largest request body accepted (bytes); larger ones are answered 413. "
        "Routes that take files have their own, larger limit.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Addresses or networks (comma-separated) of the proxies in front of the "
        "process (the ingress controller; for a service, the console too): from them, the "
        "client address is read from X-Forwarded-For. Empty: the connection's address is "
        "the client's.",
    )
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        trusted_networks(value)  # refused at start, not at the first sign-in
        return value

    @property
    def trusted_networks(self) -> tuple[IPNetwork, ...]:
        """``trusted_proxies`` parsed."""
        return trusted_networks(self.trusted_proxies)


class ServiceSettings(HttpSettings):
    """Base settings; each service subclasses it and adds its own."""

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        description="SQLAlchemy URL of this service's own database.",
    )
    # Connections kept open per process, and how many more a burst may open (each of
    # those is closed again when returned). Every request holds one briefly, so with
    # fewer kept than requests in flight each request would open (and PostgreSQL fork)
    # a connection: 3,116 sessions for 2,000 adds at 50 in flight with 10 kept.
    database_pool_size: int = 20
    database_max_overflow: int = 10
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    # Create missing registry topics at start (dev stack, tests). Off in production,
    # where KafkaTopic resources own them and ACLs forbid creating topics.
    kafka_create_topics: bool = True
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_ca_path: Path | None = None

    # Access tokens are verified locally with identity's public keys (a JWKS file).
    jwks_path: Path | None = None
    token_issuer: str = "prodigy-users/identity"  # noqa: S105 - a name, not a secret
    token_audience: str = "prodigy-users"  # noqa: S105 - a name, not a secret

    # The embedded broker keeps topics in memory only. The stack supervisor writes
    # a new id here each time it starts a broker; relays republish their retained
    # outbox and consumers start over when it changes. Unset on durable Kafka.
    broker_epoch_file: Path | None = None

    outbox_batch_size: int = 500
    # Rows per read when a reset broker is refilled from the outbox (one pass, in id order).
    outbox_republish_batch_size: int = 5000
    outbox_poll_interval_s: float = 1.0
    # Published outbox rows are kept this many days (None: for ever) so that a
    # reset broker can be refilled and read models rebuilt.
    outbox_retention_days: int | None = None

    consumer_group_prefix: str = "prodigy"
    consumer_session_timeout_ms: int = 10_000
    # How long a fetch may wait for new records. Tansu answers a waiting fetch only
    # when this runs out (not when a record arrives), so it bounds the latency of
    # every hop on the embedded broker; Apache Kafka answers early either way.
    consumer_fetch_max_wait_ms: int = 50
    consumer_batch_size: int = 200
    # After a reset of the embedded broker: how long a consumer waits for the record
    # before its resume point to be republished before it reads the partition from
    # the beginning instead (it stops waiting as soon as the topic's owner says its
    # outbox is republished).
    consumer_resume_wait_s: float = 60.0
    handler_max_attempts: int = Field(
        default=5, description="Attempts at a message before it goes to the dead-letter topic."
    )
