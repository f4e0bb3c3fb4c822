"""Kafka client options for the dev stack and for a Strimzi cluster."""

from __future__ import annotations

import ssl

from faststream.security import SASLScram512

from prodigy_users.runtime.kafka_security import broker_security, client_options
from prodigy_users.runtime.settings import ServiceSettings


def test_plaintext_by_default() -> None:
    settings = ServiceSettings()
    assert client_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert broker_security(settings) is None


def test_scram_over_tls_for_strimzi() -> None:
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="membership",
        kafka_sasl_password="s3cret",
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "membership"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    security = broker_security(settings)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl
