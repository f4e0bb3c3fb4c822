"""The embedded dev stack: PostgreSQL, Tansu, mail capture and the four services as
child processes of one supervisor, which restarts what dies and stops it all in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import shlex
import signal
import socket
import sys
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from prodigy_users.console.secret import SECRET_FILE as CONSOLE_SECRET
from prodigy_users.console.secret import ensure_secret
from prodigy_users.runtime.db import ensure_database
from prodigy_users.runtime.keys import generate_keys

from . import CONSOLE, SERVICES
from .broker import Broker
from .datadir import DataDir, StackLockedError
from .mailcapture import MailCapture
from .postgres import Postgres
from .process import ChildProcess, PortInUseError, StackError, check_port_free

log = logging.getLogger(__name__)

# What callers (the CLI, tests) import from here, wherever it is defined.
__all__ = [
    "CONSOLE",
    "HOST",
    "SERVICES",
    "PortInUseError",
    "Ports",
    "Stack",
    "StackConfig",
    "StackError",
    "StackLockedError",
    "describe_exit",
    "free_ports",
]

HOST = "127.0.0.1"
# Everything of the stack listens on loopback: what connects there is the console (on
# behalf of a person) or someone at this machine, both trusted to say who the client is.
LOOPBACK = "127.0.0.1,::1"
DEFAULT_MAIL_FROM = "Prodigy Users <no-reply@prodigy-users.local>"


@dataclass
class Ports:
    """Where everything listens (all on 127.0.0.1)."""

    console: int = 8100
    identity: int = 8101
    membership: int = 8102
    notifications: int = 8103
    reporting: int = 8104
    kafka: int = 19092
    smtp: int = 1025
    mail_http: int = 8125
    postgres: int = 15432

    @classmethod
    def free(cls) -> Ports:
        """Distinct ports that are free now (for tests that run side by side)."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**dict(zip(names, free_ports(len(names)), strict=True)))

    def offset(self, n: int) -> Ports:
        """Every port moved by ``n`` (``--port-offset``)."""
        return Ports(**{k: v + n for k, v in dataclasses.asdict(self).items()})

    def replace(self, overrides: Mapping[str, int]) -> Ports:
        """Some ports changed, e.g. ``{"kafka": 29092}``; unknown names are an error."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(
                f"unknown port name(s) {sorted(unknown)}; known: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **overrides)

    def service(self, name: str) -> int:
        """The HTTP port of a service (or of the console)."""
        if name not in SERVICES and name != CONSOLE:
            raise KeyError(f"unknown service {name!r}; services: {', '.join(SERVICES)}")
        port: int = getattr(self, name)
        return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports, below the ephemeral range (so that outgoing
    connections, which take ephemeral ports, cannot grab them meanwhile)."""
    rng = random.SystemRandom()
    chosen: list[int] = []
    held: list[socket.socket] = []
    try:
        while len(chosen) < count:
            port = rng.randrange(20000, 32000)
            if port in chosen:
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((HOST, port))
            except OSError:
                sock.close()
                continue
            held.append(sock)
            chosen.append(port)
    finally:
        for sock in held:
            sock.close()
    return chosen


@dataclass
class StackConfig:
    """What to run and where. ``None`` for an external part means: run our own."""

    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    fresh: bool = False
    postgres_url: str | None = None
    kafka_bootstrap: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    service_env: dict[str, str] = field(default_factory=dict)
    fast: bool = False
    replicas: int = 1
    services: tuple[str, ...] = SERVICES
    # Start the web console too (its links are what the emails point at).
    console: bool = True
    ready_timeout: float = 90.0
    mail_from: str = DEFAULT_MAIL_FROM
    # How a service process is started; the service name is appended. Empty: the
    # default, ``python -m prodigy_users.stack.cli serve``. E.g. ``("coverage",
    # "run", "-m", "prodigy_users.stack.cli", "serve")`` to measure the services.
    service_command: tuple[str, ...] = ()


@dataclass
class _Replica:
    """One service process (``identity``, or ``identity-2`` with replicas)."""

    key: str
    service: str
    index: int
    port: int
    proc: ChildProcess
    wanted: bool = True
    failures: int = 0
    restart_at: float = 0.0


def describe_exit(code: int | None) -> str:
    """'exit code 1' or 'killed by SIGKILL'."""
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Stack:
    """Runs the whole stack; ``async with Stack(config) as stack: ...``."""

    def __init__(self, config: StackConfig) -> None:
        if config.replicas < 1:
            raise ValueError("replicas must be at least 1")
        unknown = set(config.services) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; services: {SERVICES}")
        self.config = config
        self.data_dir = config.data_dir.expanduser().resolve()
        self.logs_dir = self.data_dir / "logs"
        self.keys_dir = self.data_dir / "keys"
        self.epoch_path = self.data_dir / "broker.epoch"
        ports = config.ports
        self.postgres = Postgres(
            self.data_dir / "postgres",
            ports.postgres,
            log_path=self.logs_dir / "postgres.log",
            fast=config.fast,
            host=HOST,
            external_url=config.postgres_url,
        )
        self.broker = Broker(
            ports.kafka,
            log_path=self.logs_dir / "broker.log",
            epoch_path=self.epoch_path,
            host=HOST,
            external=config.kafka_bootstrap,
        )
        self.mail: MailCapture | None = None
        if config.smtp_host is None:
            self.mail = MailCapture(HOST, ports.smtp, ports.mail_http, self.data_dir / "mail.jsonl")
        self._replicas: dict[str, _Replica] = {}
        self._dir = DataDir(self.data_dir)
        self._keys: dict[str, Path] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._broker_wanted = True
        self._broker_lock = asyncio.Lock()
        self._restart_services = False
        self._stop_requested = asyncio.Event()
        self._stop_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self.running = False

    async def __aenter__(self) -> Stack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- addresses -------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers."""
        return self.broker.bootstrap

    @property
    def kafka_bootstrap(self) -> str:
        """Kafka bootstrap servers (same as ``bootstrap``)."""
        return self.broker.bootstrap

    @property
    def smtp(self) -> tuple[str, int]:
        """Where the services send mail."""
        if self.config.smtp_host is not None:
            return self.config.smtp_host, self.config.smtp_port or 25
        return HOST, self.config.ports.smtp

    def database_url(self, name: str) -> str:
        """A service's database URL (``postgresql+asyncpg://...``)."""
        return self.postgres.database_url(name)

    def url(self, name: str, replica: int = 1) -> str:
        """Base URL of a service (``replica`` 1..N), of the console (``"console"``) or of
        the mail view (``"mail"``)."""
        if name == "mail":
            if self.mail is None:
                raise KeyError("mail capture is off: the stack sends mail to an external server")
            return self.mail.url
        return f"http://{HOST}:{self._port(name, replica)}"

    def _port(self, name: str, replica: int = 1) -> int:
        port = self.config.ports.service(name)
        if replica == 1:
            return port
        rep = self._replicas.get(f"{name}-{replica}")
        if rep is None:
            raise KeyError(f"{name} has no replica {replica} (replicas={self.config.replicas})")
        return rep.port

    def log_path(self, name: str) -> Path:
        """The log file of a child (``postgres``, ``broker``, ``identity``, ``identity-2``)."""
        return self.logs_dir / f"{name}.log"

    def pids(self) -> dict[str, int]:
        """Every running child process by name (for orphan checks)."""
        out: dict[str, int] = {}
        if self.postgres.pid is not None:
            out["postgres"] = self.postgres.pid
        if self.broker.pid is not None:
            out["broker"] = self.broker.pid
        for key, rep in self._replicas.items():
            if rep.proc.is_alive() and rep.proc.pid is not None:
                out[key] = rep.proc.pid
        return out

    @property
    def links_base_url(self) -> str:
        """Where the links in emails land: the console, whose pages open them (the
        services serve none); with the console skipped, where it would listen."""
        return self.url(CONSOLE)

    def console_env(self) -> dict[str, str]:
        """The console's environment: where it listens and where the four services are."""
        env = dict(os.environ)
        env.update(
            PYTHONUNBUFFERED="1",
            PRODIGY_HTTP_HOST=HOST,
            PRODIGY_HTTP_PORT=str(self.config.ports.console),
            PRODIGY_SECRET_KEY_PATH=str(self.keys_dir / CONSOLE_SECRET),
            PRODIGY_LOG_JSON="true",
            PRODIGY_TRUSTED_PROXIES=LOOPBACK,
            **{f"PRODIGY_{name.upper()}_URL": self.url(name) for name in SERVICES},
        )
        env.update(self.config.service_env)
        return env

    def service_env(self, name: str, replica: int = 1) -> dict[str, str]:
        """The whole environment a service process gets (``os.environ`` + the stack's)."""
        if name == CONSOLE:
            return self.console_env()
        if name not in SERVICES:
            raise KeyError(f"unknown service {name!r}; services: {', '.join(SERVICES)}")
        keys = self._keys or _key_paths(self.keys_dir)
        env = dict(os.environ)
        env.update(
            PYTHONUNBUFFERED="1",
            PRODIGY_DATABASE_URL=self.database_url(name),
            PRODIGY_KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            PRODIGY_HTTP_HOST=HOST,
            PRODIGY_HTTP_PORT=str(self._port(name, replica)),
            PRODIGY_JWKS_PATH=str(keys["jwks"]),
            # Every link in an email (set password, reset, invitation, join) opens a
            # page of the console.
            PRODIGY_PUBLIC_BASE_URL=self.links_base_url,
            PRODIGY_APP_BASE_URL=self.links_base_url,
            PRODIGY_LOG_JSON="true",
            # The console calls the services from loopback on behalf of the person at
            # the page, whose address it passes on (X-Forwarded-For) to be throttled.
            PRODIGY_TRUSTED_PROXIES=LOOPBACK,
        )
        if self.broker.embedded:
            env["PRODIGY_BROKER_EPOCH_FILE"] = str(self.epoch_path)
            # Tansu holds every group join for about half the session timeout (a killed
            # member's place for about twice it): on one machine, where heartbeats
            # never cross a network, 6 s instead of 10 s starts the stack 2 s sooner.
            env.setdefault("PRODIGY_CONSUMER_SESSION_TIMEOUT_MS", "6000")
        else:
            env.pop("PRODIGY_BROKER_EPOCH_FILE", None)
        if name == "identity":
            env["PRODIGY_SIGNING_KEY_PATH"] = str(keys["signing_key"])
            env["PRODIGY_SEAL_PUBLIC_KEY_PATH"] = str(keys["seal_public"])
            env["PRODIGY_IDENTITY_SEAL_PRIVATE_KEY_PATH"] = str(keys["identity_seal_private"])
        if name == "membership":
            env["PRODIGY_SEAL_PUBLIC_KEY_PATH"] = str(keys["seal_public"])
            env["PRODIGY_IDENTITY_SEAL_PUBLIC_KEY_PATH"] = str(keys["identity_seal_public"])
            env["PRODIGY_LINK_SECRET_PATH"] = str(keys["links"])
        if name == "notifications":
            smtp_host, smtp_port = self.smtp
            env["PRODIGY_SMTP_HOST"] = smtp_host
            env["PRODIGY_SMTP_PORT"] = str(smtp_port)
            env["PRODIGY_SEAL_PRIVATE_KEY_PATH"] = str(keys["seal_private"])
            env["PRODIGY_MAIL_FROM"] = self.config.mail_from
        env.update(self.config.service_env)
        return env

    # ---- start and stop --------------------------------------------------

    async def start(self) -> None:
        """Start everything and wait until every service answers ``/readyz``."""
        if self.running:
            return
        began = time.monotonic()
        self._dir.lock(wipe=self.config.fresh)
        self._stop_requested.clear()
        try:
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            self._preflight_ports()
            self._keys = generate_keys(self.keys_dir)
            ensure_secret(self.keys_dir / CONSOLE_SECRET)
            self.running = True
            self._broker_wanted = True
            await _all_or_first_failure(
                self.postgres.start(), self.broker.start(), self._start_mail()
            )
            # All four, started or not: a skipped service run by hand finds its database.
            for name in SERVICES:
                await ensure_database(self.database_url(name))
            self._watchdog = asyncio.create_task(self._watch(), name="stack-watchdog")
            self._plan_replicas()
            self._write_env_files()
            await self._start_replicas(list(self._replicas.values()))
        except BaseException:
            await self.stop()
            raise
        log.info("stack: ready in %.1f s", time.monotonic() - began)

    async def stop(self) -> None:
        """Stop services, then mail capture, broker and PostgreSQL (idempotent)."""
        self._stop_requested.set()  # a run_until_stopped in progress returns too
        async with self._stop_lock:
            if self._watchdog is not None:
                self._watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._watchdog
                self._watchdog = None
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            reps = list(self._replicas.values())
            for rep in reps:
                rep.wanted = False
            await asyncio.gather(*(self._stop_replica(r) for r in reps), return_exceptions=True)
            if self.mail is not None:
                await self.mail.stop()
            self._broker_wanted = False
            await self.broker.stop()
            await self.postgres.stop()
            self.running = False
            self._dir.unlock()

    async def run_until_stopped(self) -> None:
        """Keep everything running (restarting what dies) until ``request_stop``; then stop."""
        self._restart_services = True
        try:
            await self._stop_requested.wait()
        finally:
            self._restart_services = False
            await self.stop()

    def request_stop(self) -> None:
        """Make ``run_until_stopped`` return (safe from a signal handler)."""
        self._stop_requested.set()

    # ---- services --------------------------------------------------------

    def _plan_replicas(self) -> None:
        if self._replicas:
            return
        extra = free_ports((self.config.replicas - 1) * len(self.config.services))
        for name in self.config.services:
            for index in range(1, self.config.replicas + 1):
                key = name if index == 1 else f"{name}-{index}"
                port = self.config.ports.service(name) if index == 1 else extra.pop()
                rep = _Replica(key, name, index, port, self._service_process(key, name))
                self._replicas[key] = rep
        if self.config.console:
            # One is plenty for one machine (its forms would work across several: they
            # share the secret file).
            port = self.config.ports.console
            self._replicas[CONSOLE] = _Replica(
                CONSOLE, CONSOLE, 1, port, self._service_process(CONSOLE, CONSOLE)
            )

    def _service_process(self, key: str, name: str) -> ChildProcess:
        # The environment is filled in at each spawn (see _spawn_replica).
        command = self.config.service_command or (
            sys.executable,
            "-m",
            "prodigy_users.stack.cli",
            "serve",
        )
        return ChildProcess(key, [*command, name], log_path=self.log_path(key))

    def env_file(self, name: str) -> Path:
        """``<data-dir>/env/<name>.env``: the ``PRODIGY_*`` settings of a service, for
        running it outside the supervisor (``set -a; . FILE; set +a``)."""
        return self.data_dir / "env" / f"{name}.env"

    def _write_env_files(self) -> None:
        for name in (*SERVICES, CONSOLE):
            env = self.service_env(name)
            lines = [
                f"{k}={shlex.quote(v)}"
                for k, v in sorted(env.items())
                if k.startswith("PRODIGY_") or k in self.config.service_env
            ]
            path = self.env_file(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n")

    def _select(self, name: str) -> list[_Replica]:
        # A service name means all its replicas; "identity-2" means that one.
        reps = [r for r in self._replicas.values() if r.service == name]
        if not reps and name in self._replicas:
            reps = [self._replicas[name]]
        if not reps and name.endswith("-1") and name[:-2] in self._replicas:
            reps = [self._replicas[name[:-2]]]  # "identity-1": the first replica alone
        if not reps:
            raise KeyError(f"no service or replica named {name!r}; have {sorted(self._replicas)}")
        return reps

    async def _spawn_replica(self, rep: _Replica) -> None:
        rep.restart_at = 0.0
        rep.proc.env = self.service_env(rep.service, rep.index)
        check_port_free(HOST, rep.port, f"the {rep.key} service")
        await rep.proc.spawn()

    async def _start_replicas(self, reps: list[_Replica], consumers: bool = True) -> None:
        for rep in reps:
            rep.wanted = True
            if not rep.proc.is_alive():
                await self._spawn_replica(rep)
                log.info("%s: starting (log: %s)", rep.key, rep.proc.log_path)
        deadline = time.monotonic() + self.config.ready_timeout
        await _all_or_first_failure(
            *(self._wait_ready(rep, deadline, consumers) for rep in reps)
        )

    async def _wait_ready(self, rep: _Replica, deadline: float, consumers: bool = True) -> None:
        """Until ``/readyz`` is green and, with ``consumers``, the service's consumers
        have joined their groups (a service is ready before that: see its ``/readyz``)."""
        url = f"http://{HOST}:{rep.port}/readyz"
        last = "no answer"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if not rep.proc.is_alive():
                    raise StackError(
                        f"{rep.key} exited ({describe_exit(rep.proc.returncode)}) while "
                        f"starting (log: {rep.proc.log_path}):\n{rep.proc.log_tail()}"
                    )
                try:
                    answer = await client.get(url)
                    if answer.status_code == 200 and (
                        not consumers or answer.json().get("consumers", "ok") == "ok"
                    ):
                        break
                    last = f"{answer.status_code} {answer.text[:200]}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                if time.monotonic() > deadline:
                    raise StackError(
                        f"{rep.key} was not ready within {self.config.ready_timeout:.0f} s "
                        f"(last /readyz: {last}; log: {rep.proc.log_path}):\n"
                        f"{rep.proc.log_tail()}"
                    )
                await asyncio.sleep(0.2)
        rep.failures = 0
        took = time.monotonic() - rep.proc.started_at
        log.info("%s: ready on http://%s:%d (%.1f s)", rep.key, HOST, rep.port, took)

    async def _stop_replica(self, rep: _Replica, kill: bool = False) -> None:
        if not rep.proc.is_alive():
            return
        if kill:
            await rep.proc.kill()
            log.info("%s: killed", rep.key)
        else:
            code = await rep.proc.stop(signal.SIGTERM, 10.0)
            # uvicorn ends a graceful SIGTERM shutdown by re-raising SIGTERM.
            clean = code in (0, -signal.SIGTERM)
            log.info("%s: stopped%s", rep.key, "" if clean else f" ({describe_exit(code)})")

    async def stop_service(self, name: str, kill: bool = False) -> None:
        """Stop a service's replicas (or one, e.g. ``identity-2``); SIGKILL if ``kill``.

        The watchdog leaves it stopped until ``start_service``.
        """
        reps = self._select(name)
        for rep in reps:
            rep.wanted = False
        await asyncio.gather(*(self._stop_replica(r, kill) for r in reps))

    async def start_service(self, name: str, consumers: bool = True) -> None:
        """Start a stopped service (or replica) again and wait until it is ready and,
        with ``consumers``, until its consumers have joined their groups."""
        await self._start_replicas(self._select(name), consumers)

    # ---- broker ----------------------------------------------------------

    def _require_embedded_broker(self) -> None:
        if not self.broker.embedded:
            raise StackError(f"the stack runs no broker of its own (it uses {self.bootstrap})")

    async def kill_broker(self) -> None:
        """SIGKILL the broker, as a crash would; the watchdog starts a new, empty one
        on the same port, creates the topics and bumps the epoch."""
        self._require_embedded_broker()
        await self.broker.kill()
        log.info("broker: killed")

    async def stop_broker(self) -> None:
        """Stop the broker and keep it stopped (until ``start_broker``)."""
        self._require_embedded_broker()
        async with self._broker_lock:
            self._broker_wanted = False
            await self.broker.stop()

    async def start_broker(self) -> None:
        """Start a new, empty broker: topics, then a new epoch."""
        self._require_embedded_broker()
        async with self._broker_lock:
            self._broker_wanted = True
            await self.broker.start()

    def broker_epoch(self) -> str | None:
        """The broker epoch the services currently see."""
        return self.broker.epoch

    async def wait_for_broker_epoch(self, old: str | None, within: float = 30.0) -> str:
        """Wait until the epoch differs from ``old`` (a new broker is up with its topics)."""
        async with asyncio.timeout(within):
            while True:
                epoch = self.broker.epoch
                if epoch is not None and epoch != old and self.broker.is_alive():
                    return epoch
                await asyncio.sleep(0.05)

    # ---- watchdog --------------------------------------------------------

    async def _watch(self) -> None:
        """Restart a dead broker (always) and dead services (under ``run_until_stopped``)."""
        broker_backoff = 0.5
        while True:
            await asyncio.sleep(0.2)
            if self.postgres.embedded and not self.postgres.is_alive():
                log.error("postgres: exited unexpectedly; restarting")
                try:
                    await self.postgres.start()
                except StackError as exc:
                    log.error("postgres: restart failed: %s", exc)
                    await asyncio.sleep(2)
            if self.broker.embedded and self._broker_wanted and self.broker.has_died():
                try:
                    await self._restart_broker()
                    broker_backoff = 0.5
                except Exception as exc:
                    log.error(
                        "broker: restart failed (%s); retrying in %.1f s", exc, broker_backoff
                    )
                    await asyncio.sleep(broker_backoff)
                    broker_backoff = min(broker_backoff * 2, 10.0)
            if self._restart_services:
                for rep in self._replicas.values():
                    self._maybe_restart(rep)

    async def _restart_broker(self) -> None:
        async with self._broker_lock:
            if not (self._broker_wanted and self.broker.has_died()):
                return
            log.warning(
                "broker: exited unexpectedly (%s); starting a new one on %s",
                describe_exit(self.broker.returncode),
                self.bootstrap,
            )
            await self.broker.restart()

    def _maybe_restart(self, rep: _Replica) -> None:
        proc = rep.proc
        if not rep.wanted or proc.is_alive() or proc.pid is None:
            return
        now = time.monotonic()
        if rep.restart_at == 0.0:
            # A crash soon after a start counts towards backing off; a long run resets it.
            rep.failures = rep.failures + 1 if now - proc.started_at < 30 else 1
            delay = min(2.0 ** (rep.failures - 1), 30.0)
            rep.restart_at = now + delay
            log.warning(
                "%s: exited (%s); restarting in %.0f s (log: %s)",
                rep.key,
                describe_exit(proc.returncode),
                delay,
                proc.log_path,
            )
            return
        if now < rep.restart_at:
            return
        rep.restart_at = 0.0
        task = asyncio.create_task(self._restart_replica(rep), name=f"restart-{rep.key}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _restart_replica(self, rep: _Replica) -> None:
        try:
            await self._spawn_replica(rep)
            await self._wait_ready(rep, time.monotonic() + self.config.ready_timeout)
        except (StackError, OSError) as exc:
            log.error("%s: restart failed: %s", rep.key, str(exc).splitlines()[0])

    # ---- mail capture ----------------------------------------------------

    def _require_mail_capture(self) -> MailCapture:
        if self.mail is None:
            raise StackError("the stack runs no mail capture (it sends mail to an SMTP server)")
        return self.mail

    async def stop_mail(self) -> None:
        """Stop the mail capture (SMTP and HTTP view), as a relay outage would: sends
        are refused until ``start_mail``. What it captured is kept."""
        await self._require_mail_capture().stop()

    async def start_mail(self) -> None:
        """Start the mail capture again on the same ports, with what it had captured."""
        mail = self._require_mail_capture()
        if not mail.running:
            await mail.start()

    # ---- data directory --------------------------------------------------

    async def _start_mail(self) -> None:
        if self.mail is not None:
            await self.mail.start()

    def _preflight_ports(self) -> None:
        """Fail before starting anything if a port we need is taken."""
        ports = self.config.ports
        wanted: list[tuple[int, str]] = []
        if self.postgres.embedded:
            wanted.append((ports.postgres, "PostgreSQL"))
        if self.broker.embedded:
            wanted.append((ports.kafka, "the Kafka broker (Tansu)"))
        if self.mail is not None:
            wanted += [(ports.smtp, "the mail capture (SMTP)")]
            wanted += [(ports.mail_http, "the mail capture (HTTP view)")]
        wanted += [(ports.service(n), f"the {n} service") for n in self.config.services]
        if self.config.console:
            wanted.append((ports.console, "the console"))
        seen: dict[int, str] = {}
        for port, what in wanted:
            if port in seen:
                raise PortInUseError(f"{what} and {seen[port]} are both configured on port {port}")
            seen[port] = what
            check_port_free(HOST, port, what)


def _key_paths(directory: Path) -> dict[str, Path]:
    return {
        "signing_key": directory / "signing.pem",
        "jwks": directory / "jwks.json",
        "seal_private": directory / "seal.pem",
        "seal_public": directory / "seal.pub.pem",
        "identity_seal_private": directory / "identity-seal.pem",
        "identity_seal_public": directory / "identity-seal.pub.pem",
        "links": directory / "links.key",
    }


async def _all_or_first_failure(*coros: Coroutine[Any, Any, object]) -> None:
    """Run concurrently; at the first failure cancel the rest and raise it (with any
    other failure that happened at the same moment). Cancelling us cancels them all."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    errors = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
    if len(errors) == 1 and errors[0] is not None:
        raise errors[0]
    if errors:
        raise StackError("\n\n".join(str(e) for e in errors))
