"""`prodigy-users up` as a user runs it: start, use, SIGTERM, start again on the same data."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from prodigy_users.stack.supervisor import Ports
from tests.support import PASSWORD, Admin, Api, Keys, link_token, random_email, wait_for

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "prodigy_users.stack.cli"]


def _port_args(ports: Ports) -> list[str]:
    args: list[str] = []
    for name in (
        "console",
        "identity",
        "membership",
        "notifications",
        "reporting",
        "kafka",
        "smtp",
        "mail_http",
        "postgres",
    ):
        args += ["--port", f"{name}={getattr(ports, name)}"]
    return args


def _urls(ports: Ports) -> dict[str, str]:
    urls = {
        n: f"http://127.0.0.1:{getattr(ports, n)}"
        for n in ("identity", "membership", "notifications", "reporting")
    }
    urls["mail"] = f"http://127.0.0.1:{ports.mail_http}"
    return urls


@pytest.fixture
def up_env() -> Iterator[dict[str, str]]:
    yield {k: v for k, v in os.environ.items() if not k.startswith("PRODIGY_")}


async def _start(
    data: Path, ports: Ports, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data), *_port_args(ports)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    urls = _urls(ports)

    async def ready() -> bool:
        assert proc.poll() is None, f"up exited early:\n{log.read_text()[-3000:]}"
        async with httpx.AsyncClient(timeout=2) as http:
            for name in ("identity", "membership", "notifications", "reporting"):
                try:
                    r = await http.get(urls[name] + "/readyz")
                except httpx.HTTPError:
                    return False
                # Ready serves requests; the whole system flows once the consumers
                # have joined their groups too (an add is then answered 201 at once).
                if r.status_code != 200 or r.json().get("consumers") != "ok":
                    return False
        return True

    await wait_for(ready, timeout=120, interval=0.25, what="every service ready and consuming")
    return proc


async def _stop(proc: subprocess.Popen[bytes]) -> None:
    children = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    assert children, "up runs its parts as child processes"
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.wait, 60)
    assert code == 0, f"up exited {code}"

    async def all_gone() -> bool:
        return not [
            pid
            for pid in children
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]

    await wait_for(all_gone, timeout=10, what="no orphan processes")


async def test_up_survives_a_restart_without_losing_or_repeating_anything(
    tmp_path: Path, up_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    log = tmp_path / "up.log"
    ports = Ports.free()
    proc = await _start(data, ports, up_env, log)
    api = Api(_urls(ports), Keys(data / "keys"))
    try:
        admin_email = random_email("admin")
        created = subprocess.run(
            [
                *CLI,
                "create-department",
                "--name",
                "Restart EMS",
                "--admin-email",
                admin_email,
                "--admin-name",
                "Ada Admin",
                "--admin-password",
                PASSWORD,
                "--data-dir",
                str(data),
                "--membership-url",
                api.urls["membership"],
                "--identity-url",
                api.urls["identity"],
            ],
            capture_output=True,
            text=True,
            env=up_env,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        department = json.loads(created.stdout)
        assert "set_password_url" not in department
        admin = Admin(
            department["department_id"],
            department["admin_account_id"],
            admin_email,
            await api.login(admin_email),
        )
        email = random_email("kept")
        assert (await api.add_member(admin, email)).status_code == 201
        [mail] = await api.wait_mail(email)
        r = await api.http.post(
            api.url("identity", "/v1/password/set"),
            json={"token": link_token(mail), "password": PASSWORD},
        )
        assert r.status_code == 204
        await api.wait_reported(admin, email)
    finally:
        await _stop(proc)

    proc = await _start(data, ports, up_env, log)
    try:
        assert await api.login(email)
        admin.token = await api.login(admin_email)
        await api.wait_reported(admin, email)
        fence = random_email("fence")
        assert (await api.add_member(admin, fence)).status_code == 201
        await api.wait_mail(fence)
        assert len(await api.mails(email)) == 1, "no email is sent twice after a restart"
        assert len(await api.mails(admin_email)) == 1
        await api.wait_reported(admin, fence)
        rows = await api.report_users(admin)
        assert sorted(u["email"] for u in rows) == sorted([admin_email, email, fence])
    finally:
        await api.close()
        await _stop(proc)
