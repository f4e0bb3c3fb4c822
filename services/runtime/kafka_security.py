"""How every Kafka client of a service authenticates: plaintext on the dev stack,
TLS with SCRAM users on a Strimzi cluster."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from .settings import ServiceSettings


def _ssl(settings: ServiceSettings) -> ssl.SSLContext | None:
    if "SSL" not in settings.kafka_security_protocol:
        return None
    cafile = str(settings.kafka_ssl_ca_path) if settings.kafka_ssl_ca_path else None
    context: ssl.SSLContext = create_ssl_context(cafile=cafile)
    return context


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producer, consumer and admin clients."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = _ssl(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return options


def broker_security(settings: ServiceSettings) -> BaseSecurity | None:
    """The same, as FastStream's security object for the broker."""
    protocol = settings.kafka_security_protocol
    context = _ssl(settings)
    if not protocol.startswith("SASL"):
        return BaseSecurity(ssl_context=context) if context is not None else None
    username = settings.kafka_sasl_username or ""
    password = settings.kafka_sasl_password or ""
    mechanism = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }[settings.kafka_sasl_mechanism or "SCRAM-SHA-512"]
    return mechanism(username, password, ssl_context=context, use_ssl=context is not None)
