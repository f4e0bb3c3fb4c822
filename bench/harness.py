"""What every benchmark needs: a stack to measure (its own, or a running one) and a client."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import Api, Keys


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Options to measure a running stack instead of starting one."""
    parser.add_argument("--keys-dir", help="a running stack's keys directory (skip starting one)")
    parser.add_argument("--identity", default="http://127.0.0.1:8101")
    parser.add_argument("--membership", default="http://127.0.0.1:8102")
    parser.add_argument("--reporting", default="http://127.0.0.1:8104")
    parser.add_argument("--mail", default="http://127.0.0.1:8125")


@asynccontextmanager
async def target(args: argparse.Namespace) -> AsyncIterator[Api]:
    """A client for the stack named by ``args``, or for a fresh embedded one it starts,
    stops and deletes again."""
    async with target_stack(args) as (api, _):
        yield api


@asynccontextmanager
async def target_stack(args: argparse.Namespace) -> AsyncIterator[tuple[Api, Any]]:
    """Like ``target``, with the ``Stack`` it started (None for a running one given by
    ``args``), for benchmarks that also reach its database or broker."""
    if args.keys_dir:
        urls = {
            "identity": args.identity,
            "membership": args.membership,
            "reporting": args.reporting,
            "mail": args.mail,
        }
        api = Api(urls, Keys(Path(args.keys_dir)))
        try:
            yield api, None
        finally:
            await api.close()
        return
    from prodigy_users.stack.supervisor import Ports, Stack, StackConfig

    data = Path(tempfile.mkdtemp(prefix="prodigy-bench-"))
    replicas = getattr(args, "replicas", 1)
    stack = Stack(StackConfig(data_dir=data, ports=Ports.free(), fresh=True, replicas=replicas))
    try:
        print("starting the embedded stack ...", flush=True)
        await stack.start()
        api = Api(
            {n: stack.url(n) for n in ("identity", "membership", "reporting", "mail")},
            Keys(data / "keys"),
        )
        try:
            yield api, stack
        finally:
            await api.close()
    finally:
        await stack.stop()
        shutil.rmtree(data, ignore_errors=True)
