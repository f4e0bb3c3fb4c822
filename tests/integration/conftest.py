"""Fixtures several integration modules share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from prodigy_users.stack.mailcapture import MailCapture
from prodigy_users.stack.supervisor import HOST, free_ports
from tests.integration.databases import stop_shared


@pytest.fixture(scope="session", autouse=True)
async def shared_postgres() -> AsyncIterator[None]:
    """Stops the PostgreSQL that ``own_database`` starts on first use, at the end."""
    yield
    await stop_shared()


@pytest.fixture
async def capture(tmp_path: Path) -> AsyncIterator[MailCapture]:
    """A real SMTP server (the dev stack's mail capture) on free ports of its own."""
    smtp_port, http_port = free_ports(2)
    mail = MailCapture(HOST, smtp_port, http_port, tmp_path / "mail.jsonl")
    await mail.start()
    try:
        yield mail
    finally:
        await mail.stop()
