"""The embedded stack's own parts, for real: PostgreSQL, Tansu, the mail capture and
the supervisor (its services here are a tiny stand-in HTTP server, not the four)."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import smtplib
import socket
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from prodigy_users.contracts.topics import TOPICS
from prodigy_users.stack.mailcapture import MailCapture
from prodigy_users.stack.postgres import Postgres
from prodigy_users.stack.process import PortInUseError, StackError
from prodigy_users.stack.supervisor import (
    HOST,
    Ports,
    Stack,
    StackConfig,
    StackLockedError,
    free_ports,
)

pytestmark = pytest.mark.timeout(120)

REGISTRY_TOPICS = {t.name for t in TOPICS} | {t.dlq for t in TOPICS}


async def eventually(probe: Callable[[], object], what: str, within: float = 15.0) -> object:
    """Poll ``probe`` (sync or async) until it returns something truthy, with a deadline."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for init counts as exited)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def config(data_dir: Path, **overrides: object) -> StackConfig:
    """A stack without the four services, on free ports, built for speed."""
    values: dict[str, object] = {
        "ports": Ports.free(),
        "fast": True,
        "services": (),
        "console": False,
    }
    values.update(overrides)
    return StackConfig(data_dir=data_dir, **values)  # type: ignore[arg-type]


def send_mail(port: int, to: list[str], subject: str) -> None:
    """Send one multipart mail with the standard library (blocking: run in a thread)."""
    msg = EmailMessage()
    msg["From"] = "Prodigy <no-reply@prodigy.test>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg.set_content("Set your password: http://127.0.0.1/set-password?token=abc\n")
    msg.add_alternative("<p>Set your <a href='http://127.0.0.1/x'>password</a></p>\n", "html")
    with smtplib.SMTP(HOST, port, timeout=10) as smtp:
        smtp.send_message(msg)


async def broker_topics(bootstrap: str) -> set[str]:
    """Topics on a broker."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


# ---- PostgreSQL ---------------------------------------------------------------------


async def test_postgres_keeps_data_across_stop_and_crash(tmp_path: Path) -> None:
    pg = Postgres(tmp_path / "pg", free_ports(1)[0], log_path=tmp_path / "pg.log", fast=True)
    await pg.start()
    try:
        conn = await asyncpg.connect(pg.url)
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('one')")
        await conn.close()
        first = pg.pid
        assert first is not None
        await pg.stop()
        assert gone(first)

        await pg.start()
        conn = await asyncpg.connect(pg.url)
        await conn.execute("INSERT INTO kept VALUES ('two')")
        await conn.close()
        await pg.kill()  # as a crash would: recovery replays the WAL

        await pg.start()
        conn = await asyncpg.connect(pg.url)
        assert sorted(await conn.fetchval("SELECT array_agg(v) FROM kept")) == ["one", "two"]
        await conn.close()
        assert pg.database_url("identity").startswith("postgresql+asyncpg://postgres@")
    finally:
        await pg.stop()
    assert pg.pid is None


async def test_a_taken_port_is_named(tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind((HOST, 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        pg = Postgres(tmp_path / "pg", port, log_path=tmp_path / "pg.log")
        with pytest.raises(PortInUseError, match=f"PostgreSQL cannot listen on {HOST}:{port}"):
            await pg.start()
        stack = Stack(config(tmp_path / "data", ports=Ports.free().replace({"kafka": port})))
        with pytest.raises(PortInUseError, match=f"Kafka broker.*{port}"):
            await stack.start()
        assert stack.pids() == {}
    finally:
        blocker.close()


# ---- mail capture ---------------------------------------------------------------------


async def test_mail_capture_over_smtp_and_http_and_across_restarts(tmp_path: Path) -> None:
    smtp_port, http_port = free_ports(2)
    store = tmp_path / "mail.jsonl"
    capture = MailCapture(HOST, smtp_port, http_port, store)
    await capture.start()
    try:
        await asyncio.to_thread(send_mail, smtp_port, ["ann@example.org", "bo@example.org"], "Hi")
        await asyncio.to_thread(send_mail, smtp_port, ["cy@example.org"], "Welcome ✓")
        async with httpx.AsyncClient(base_url=capture.url) as http:
            messages = (await http.get("/messages")).json()
            assert [m["subject"] for m in messages] == ["Hi", "Welcome ✓"]  # newest last
            first = messages[0]
            assert set(first) == {
                "id",
                "from",
                "to",
                "subject",
                "text",
                "html",
                "received_at",
                "message_id",
            }
            assert first["from"] == "no-reply@prodigy.test"
            assert first["to"] == ["ann@example.org", "bo@example.org"]
            assert first["text"] == "Set your password: http://127.0.0.1/set-password?token=abc\n"
            assert "<a href='http://127.0.0.1/x'>" in first["html"]
            only = (await http.get("/messages", params={"to": "CY@example.org"})).json()
            assert [m["subject"] for m in only] == ["Welcome ✓"]
    finally:
        await capture.stop()

    capture = MailCapture(HOST, smtp_port, http_port, store)
    await capture.start()
    try:
        async with httpx.AsyncClient(base_url=capture.url) as http:
            assert len((await http.get("/messages")).json()) == 2  # kept across the restart
            assert (await http.delete("/messages")).status_code == 204
            assert (await http.get("/messages")).json() == []
    finally:
        await capture.stop()

    capture = MailCapture(HOST, smtp_port, http_port, store)
    await capture.start()
    try:
        assert capture.messages == []  # the deletion was kept too
    finally:
        await capture.stop()


async def test_mail_capture_parses_a_message_only_when_it_is_read(tmp_path: Path) -> None:
    """A burst nobody reads costs no parsing; unread messages survive a restart as
    they arrived, and a file an older capture wrote (parsed lines) still loads."""
    smtp_port, http_port = free_ports(2)
    store = tmp_path / "mail.jsonl"
    old_line = (
        '{"id": "old1", "from": "a@p.test", "to": ["old@example.org"], "subject": "Old", '
        '"message_id": null, "text": "t", "html": null, "received_at": "2026-11-01T00:00:00+00:00"}'
    )
    store.write_text(old_line + "\n")
    capture = MailCapture(HOST, smtp_port, http_port, store)
    await capture.start()
    try:
        await asyncio.to_thread(send_mail, smtp_port, ["dee@example.org"], "Unread")
        [old, new] = capture.store.captured
        assert new.to == ["dee@example.org"] and new.message is None  # kept, not parsed
        assert old.message is not None and old.message["subject"] == "Old"
    finally:
        await capture.stop()

    capture = MailCapture(HOST, smtp_port, http_port, store)
    await capture.start()
    try:
        assert [c.message is None for c in capture.store.captured] == [False, True]
        async with httpx.AsyncClient(base_url=capture.url) as http:
            messages = (await http.get("/messages")).json()
        assert [m["subject"] for m in messages] == ["Old", "Unread"]
        assert messages[1]["to"] == ["dee@example.org"]
        assert messages[1]["id"] == capture.store.captured[1].id
        assert capture.store.captured[1].message is not None  # parsed once, now kept
    finally:
        await capture.stop()


# ---- broker and supervisor ----------------------------------------------------------


async def test_broker_watchdog_restarts_a_killed_broker_with_topics_and_a_new_epoch(
    tmp_path: Path,
) -> None:
    stack = Stack(config(tmp_path / "data"))
    await stack.start()
    try:
        assert await broker_topics(stack.bootstrap) >= REGISTRY_TOPICS
        epoch = stack.broker_epoch()
        assert epoch and stack.epoch_path.read_text().strip() == epoch
        old = stack.pids()["broker"]

        await stack.kill_broker()
        assert gone(old)
        renewed = await stack.wait_for_broker_epoch(epoch, within=20)
        assert stack.pids()["broker"] != old
        assert await broker_topics(stack.bootstrap) >= REGISTRY_TOPICS

        await stack.stop_broker()
        await asyncio.sleep(0.6)  # three watchdog rounds: a stopped broker stays stopped
        assert "broker" not in stack.pids()
        assert stack.broker_epoch() == renewed

        await stack.start_broker()
        assert stack.broker_epoch() not in (None, epoch, renewed)
        assert await broker_topics(stack.bootstrap) >= REGISTRY_TOPICS

        # The databases exist and mail is captured, too.
        for name in ("identity", "membership", "notifications", "reporting"):
            url = stack.database_url(name).replace("+asyncpg", "")
            conn = await asyncpg.connect(url)
            await conn.close()
        await asyncio.to_thread(send_mail, stack.smtp[1], ["dee@example.org"], "Captured")
        assert stack.mail is not None
        await stack.mail.wait_for(lambda m: m["subject"] == "Captured", within=10)
        children = list(stack.pids().values())
        assert len(children) == 2
    finally:
        await stack.stop()
    assert stack.pids() == {}
    assert all(gone(pid) for pid in children)


async def test_data_survives_a_restart_and_fresh_starts_empty(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ports = Ports.free()
    stack = Stack(config(data, ports=ports))
    await stack.start()
    try:
        with pytest.raises(StackLockedError, match="already running"):
            await Stack(config(data)).start()
        conn = await asyncpg.connect(stack.database_url("identity").replace("+asyncpg", ""))
        await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
        await conn.close()
        await asyncio.to_thread(send_mail, ports.smtp, ["eve@example.org"], "Kept")
        jwks = (data / "keys" / "jwks.json").read_text()
        env = stack.service_env("notifications")
        assert env["PRODIGY_SMTP_PORT"] == str(ports.smtp)
        assert env["PRODIGY_DATABASE_URL"].endswith(f":{ports.postgres}/notifications")
        assert env["PRODIGY_BROKER_EPOCH_FILE"] == str(stack.epoch_path)
        assert "PRODIGY_JWKS_PATH=" in stack.env_file("identity").read_text()
    finally:
        await stack.stop()

    async with Stack(config(data, ports=ports)) as again:
        conn = await asyncpg.connect(again.database_url("identity").replace("+asyncpg", ""))
        assert await conn.fetchval("SELECT v FROM kept") == 7
        await conn.close()
        assert again.mail is not None
        assert [m["subject"] for m in again.mail.messages] == ["Kept"]
        assert (data / "keys" / "jwks.json").read_text() == jwks

    async with Stack(config(data, ports=ports, fresh=True)) as fresh:
        conn = await asyncpg.connect(fresh.database_url("identity").replace("+asyncpg", ""))
        assert await conn.fetchval("SELECT to_regclass('kept')") is None
        await conn.close()
        assert fresh.mail is not None and fresh.mail.messages == []
        assert (data / "keys" / "jwks.json").read_text() != jwks


# ---- service processes (a stand-in service) -----------------------------------------

FAKE_SERVICE = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        env = {k: v for k, v in os.environ.items() if k.startswith("PRODIGY_")}
        body = json.dumps({"name": sys.argv[1], "env": env}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

address = (os.environ["PRODIGY_HTTP_HOST"], int(os.environ["PRODIGY_HTTP_PORT"]))
HTTPServer(address, Handler).serve_forever()
"""


async def test_services_start_stop_restart_and_leave_nothing_behind(tmp_path: Path) -> None:
    script = tmp_path / "fake_service.py"
    script.write_text(FAKE_SERVICE)
    stack = Stack(
        config(
            tmp_path / "data",
            services=("identity", "membership"),
            replicas=2,
            service_command=(sys.executable, str(script)),
            service_env={"PRODIGY_TOKEN_TTL_S": "5"},
        )
    )
    await stack.start()
    runner = asyncio.create_task(stack.run_until_stopped())
    try:
        assert {"identity", "identity-2", "membership", "membership-2"} <= set(stack.pids())
        async with httpx.AsyncClient() as http:
            info = (await http.get(stack.url("identity") + "/readyz")).json()
            assert info["name"] == "identity"
            env = info["env"]
            assert env["PRODIGY_DATABASE_URL"].endswith("/identity")
            assert env["PRODIGY_SIGNING_KEY_PATH"].endswith("signing.pem")
            assert env["PRODIGY_TOKEN_TTL_S"] == "5"
            second = (await http.get(stack.url("identity", 2) + "/readyz")).json()
            assert second["env"]["PRODIGY_HTTP_PORT"] == stack.url("identity", 2).rsplit(":", 1)[1]

        before = stack.pids()
        await stack.stop_service("identity")
        assert "identity" not in stack.pids() and "identity-2" not in stack.pids()
        assert gone(before["identity"]) and gone(before["identity-2"])
        await stack.start_service("identity")
        assert {"identity", "identity-2"} <= set(stack.pids())

        await stack.stop_service("membership-2", kill=True)
        assert gone(before["membership-2"])

        # A service that dies on its own is restarted by the watchdog.
        victim = stack.pids()["membership"]
        os.kill(victim, signal.SIGKILL)

        async def restarted() -> bool:
            pid = stack.pids().get("membership")
            if pid is None or pid == victim:
                return False
            async with httpx.AsyncClient() as http:
                try:
                    return (await http.get(stack.url("membership") + "/readyz")).is_success
                except httpx.HTTPError:
                    return False

        await eventually(restarted, "membership to be restarted", within=20)
        assert "membership-2" not in stack.pids()  # stopped on purpose: left alone
        children = list(stack.pids().values())
    finally:
        stack.request_stop()
        await runner
    assert stack.pids() == {}
    assert all(gone(pid) for pid in children)


async def test_a_service_that_dies_while_starting_is_reported_with_its_log(
    tmp_path: Path,
) -> None:
    script = tmp_path / "broken_service.py"
    script.write_text("import sys\nprint('cannot load settings: boom', flush=True)\nsys.exit(3)\n")
    stack = Stack(
        config(
            tmp_path / "data",
            services=("reporting",),
            service_command=(sys.executable, str(script)),
        )
    )
    with pytest.raises(StackError) as caught:
        await stack.start()
    message = str(caught.value)
    assert "reporting exited (exit code 3) while starting" in message
    assert "cannot load settings: boom" in message
    assert str(stack.log_path("reporting")) in message
    assert stack.pids() == {}


# ---- the `up` command ---------------------------------------------------------------


def _up_command(data: Path, ports: Ports) -> list[str]:
    argv = [sys.executable, "-m", "prodigy_users.stack.cli", "up", "--data-dir", str(data)]
    argv += ["--skip", "identity,membership,notifications,reporting,console"]
    for name in ("kafka", "smtp", "mail_http", "postgres"):
        argv += ["--port", f"{name}={getattr(ports, name)}"]
    return argv


async def _start_up(data: Path, ports: Ports) -> tuple[asyncio.subprocess.Process, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        *_up_command(data, ports),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(60):
        while not any("Press Ctrl-C to stop." in line for line in lines):
            line = (await proc.stdout.readline()).decode()
            if not line:
                assert proc.stderr is not None
                raise AssertionError("up exited early: " + (await proc.stderr.read()).decode())
            lines.append(line)
    return proc, lines


async def test_up_prints_addresses_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    ports = Ports.free()
    proc, lines = await _start_up(tmp_path / "data", ports)
    children = [c.pid for c in psutil.Process(proc.pid).children()]
    assert len(children) == 2  # PostgreSQL and the broker
    out = "".join(lines)
    assert f"127.0.0.1:{ports.kafka}" in out
    assert f"http://127.0.0.1:{ports.mail_http}/messages" in out
    assert "identity.env" in out  # skipped services: how to run them by hand

    # A second `up` on the same data directory is refused, clearly.
    second = await asyncio.create_subprocess_exec(
        *_up_command(tmp_path / "data", Ports.free()),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await second.communicate()
    assert second.returncode == 1
    assert "already running" in err.decode()

    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert "SIGTERM received: stopping" in stderr.decode()
    assert all(gone(pid) for pid in children)


async def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    proc, _ = await _start_up(tmp_path / "data", Ports.free())
    children = [c.pid for c in psutil.Process(proc.pid).children()]
    assert len(children) == 2
    proc.kill()
    await proc.wait()
    await eventually(lambda: all(gone(pid) for pid in children), "orphans to exit", within=15)
    # The lock went with the supervisor, and PostgreSQL shut down cleanly: the data
    # directory can be used again at once.
    async with Stack(config(tmp_path / "data")) as again:
        assert set(again.pids()) == {"postgres", "broker"}
