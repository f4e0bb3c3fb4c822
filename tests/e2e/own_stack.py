"""A stack of a test's own, two processes of each service it runs: for the tests that
kill processes (the session's shared stack must not lose any)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from prodigy_users.stack.supervisor import Ports, Stack, StackConfig
from tests.conftest import TARGET


@contextlib.asynccontextmanager
async def two_of_each(tmp_path: Path, **config: Any) -> AsyncIterator[Stack]:
    """A fresh embedded stack in ``tmp_path``, two replicas per service, on free ports;
    ``config``: the rest of its ``StackConfig`` (``services``, ``service_env``...)."""
    if TARGET != "embedded":
        pytest.skip(f"PRODIGY_TEST_TARGET={TARGET}: this test runs its own embedded stack")
    stack = Stack(
        StackConfig(
            data_dir=tmp_path / "stack",
            ports=Ports.free(),
            fresh=True,
            fast=True,
            replicas=2,
            **config,
        )
    )
    async with stack:
        yield stack
