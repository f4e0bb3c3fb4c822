"""Test harness: starts the real stack (PostgreSQL, Tansu, SMTP capture, the four services) once.

``PRODIGY_TEST_TARGET`` picks what the tests run against:

- ``embedded`` (default): embedded PostgreSQL, the Tansu broker and an aiosmtpd
  capture, all started here; the services run as real child processes.
- ``containers``: PostgreSQL and Apache Kafka from testcontainers (needs Docker);
  the services and the mail capture still run here.
- ``external``: an already-running system; ``PRODIGY_TEST_URLS`` is a JSON object
  with ``identity``, ``membership``, ``notifications``, ``reporting`` and ``mail``
  URLs and ``PRODIGY_TEST_KEYS_DIR`` the directory with ``signing.pem``/``jwks.json``.
  Tests that stop or kill parts of the stack are skipped there, with the reason.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.otel import OtlpReceiver
from tests.support import Api, Keys

TARGET = os.environ.get("PRODIGY_TEST_TARGET", "embedded")
SERVICES = ("identity", "membership", "notifications", "reporting")

# Short enough that expiry can be tested, long enough never to bite a slow run.
TEST_SERVICE_ENV = {"PRODIGY_SEND_BACKOFF_BASE_S": "0.2", "PRODIGY_SEND_BACKOFF_MAX_S": "2"}


# Modules whose tests stop or kill the broker. They run last: on the memory-only
# broker every reset makes each relay republish its whole outbox, and records that
# other tests wrote straight to the topics are gone after it (consumers then read
# those partitions again from the beginning), which slows whatever runs next. Longest
# first, so the worker that takes the last one waits least for the other.
RESETS_THE_BROKER = (
    "tests/e2e/test_resilience.py",
    "tests/e2e/test_dead_letters.py",
    "tests/e2e/test_metrics.py",
)


# Reads every public topic for secrets: after every module that writes to the broker,
# before those that reset it (a reset loses what the other modules wrote).
SCANS_THE_TOPICS = "tests/e2e/test_public_topics.py"


# The longest modules (from ``--durations`` of whole runs, about 25 to 65 s each), before
# all the others: with ``-n 2 --dist loadfile`` each worker takes the next module as it
# finishes one, so the many short ones fill in at the end and neither worker finishes
# long before the other. Longest first, but the one-test modules spread out: a worker
# with two tests or fewer left takes the next module, so it could queue several of
# them. A module missing here only runs in its collection place. (xdist's own order,
# by number of tests per module, put most of these last, and the topic scan and the
# resets before some modules that write: pyproject.toml's addopts turn it off with
# ``--no-loadscope-reorder``.) test_restart runs a stack of its own: it resets
# nothing of the shared one.
SLOW_FIRST = (
    "tests/e2e/test_openapi_contract.py",
    "tests/e2e/test_registration_link.py",
    "tests/e2e/test_reset_timing.py",
    "tests/e2e/test_linked_addresses.py",
    "tests/e2e/test_scale_out.py",
    "tests/e2e/test_throttling.py",
    "tests/e2e/test_restart.py",
    "tests/e2e/test_invitations.py",
    "tests/e2e/test_email_crash.py",
    "tests/e2e/test_imports.py",
    "tests/e2e/test_text_input.py",
    "tests/e2e/console/test_record.py",
    "tests/e2e/test_imports_resume.py",
    "tests/integration/stack/test_parts.py",
)


def _run_order(item: pytest.Item) -> tuple[int, int]:
    module = item.nodeid.split("::", 1)[0]
    if module in RESETS_THE_BROKER:
        return 3, RESETS_THE_BROKER.index(module)
    if module == SCANS_THE_TOPICS:
        return 2, 0
    if module in SLOW_FIRST:
        return 0, SLOW_FIRST.index(module)
    return 1, 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest modules first, then the rest, then the topic scan, then the
    broker-resetting modules (a stable sort keeps the order within each)."""
    items.sort(key=_run_order)


def _containers(stack: ExitStack) -> dict[str, Any]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    pg = stack.enter_context(
        PostgresContainer("postgres:18", username="postgres", password="postgres")
    )
    kafka = stack.enter_context(KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft())
    host, port = pg.get_container_host_ip(), pg.get_exposed_port(5432)
    return {
        "postgres_url": f"postgresql+asyncpg://postgres:postgres@{host}:{port}/postgres",
        "kafka_bootstrap": kafka.get_bootstrap_server(),
    }


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    """The session stack's data directory: temporary, or ``PRODIGY_TEST_DATA_DIR`` kept
    afterwards (its ``stack/logs`` hold every service's log, for debugging a failure)."""
    kept = os.environ.get("PRODIGY_TEST_DATA_DIR")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        yield Path(kept)
        return
    with tempfile.TemporaryDirectory(prefix="prodigy-test-") as directory:
        yield Path(directory)


@pytest.fixture(scope="session")
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """Receives the spans the session stack's services export (tests/otel.py); it
    records only requests that arrive with a sampled ``traceparent``."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
async def stack(data_dir: Path, otlp_receiver: OtlpReceiver) -> AsyncIterator[Any]:
    """The running stack (a ``prodigy_users.stack.supervisor.Stack``), or None when external."""
    if TARGET == "external":
        yield None
        return
    from prodigy_users.stack.supervisor import Ports, Stack, StackConfig

    with ExitStack() as resources:
        external = _containers(resources) if TARGET == "containers" else {}
        config = StackConfig(
            data_dir=data_dir / "stack",
            ports=Ports.free(),
            fresh=True,
            fast=True,
            service_env={**TEST_SERVICE_ENV, **otlp_receiver.service_env()},
            **external,
        )
        running = Stack(config)
        try:
            await running.start()
            yield running
        finally:
            await running.stop()


@pytest.fixture(scope="session")
def urls(stack: Any) -> dict[str, str]:
    """Base URLs of the four services and the mail capture."""
    if stack is None:
        return dict(json.loads(os.environ["PRODIGY_TEST_URLS"]))
    return {name: stack.url(name) for name in (*SERVICES, "mail")}


@pytest.fixture(scope="session")
def keys(stack: Any, data_dir: Path) -> Keys:
    """The stack's signing keys."""
    if stack is None:
        return Keys(Path(os.environ["PRODIGY_TEST_KEYS_DIR"]))
    return Keys(stack.config.data_dir / "keys")


@pytest.fixture(scope="session")
async def api(urls: dict[str, str], keys: Keys) -> AsyncIterator[Api]:
    """An HTTP client for the stack."""
    client = Api(urls, keys)
    yield client
    await client.close()


@pytest.fixture
def controllable(stack: Any) -> Any:
    """The stack, for tests that stop or kill parts of it (skipped on an external system)."""
    if stack is None:
        pytest.skip("PRODIGY_TEST_TARGET=external: this test stops parts of the stack")
    return stack


@pytest.fixture(scope="session")
def bootstrap(stack: Any) -> str:
    """Kafka bootstrap servers of the stack."""
    if stack is None:
        return os.environ["PRODIGY_TEST_KAFKA_BOOTSTRAP"]
    return str(stack.kafka_bootstrap)
