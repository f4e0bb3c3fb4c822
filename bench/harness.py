"""What every benchmark needs: a stack to measure (its own, or a running one) and a client."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import psutil

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


class CpuMeter:
    """CPU seconds spent by each part of a stack this harness started, between two marks.

    PostgreSQL's figure is the postmaster's and every backend's (live or ended); the
    ``bench`` figure is this process (the client, and the SMTP capture that runs in it).
    Seconds of CPU per operation hold steady on a shared machine where wall-clock
    throughput does not, which is why benchmarks report both.
    """

    def __init__(self, stack: Any) -> None:
        self._stack = stack
        self._start: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        out: dict[str, float] = {"bench": sum(psutil.Process().cpu_times()[:2])}
        for name, pid in self._stack.pids().items():
            try:
                proc = psutil.Process(pid)
                t = proc.cpu_times()
                spent = t.user + t.system
                if name in ("postgres", "broker"):
                    spent += t.children_user + t.children_system
                    for child in proc.children(recursive=True):
                        with suppress(psutil.Error):
                            c = child.cpu_times()
                            spent += c.user + c.system
                out[name] = spent
            except psutil.Error:
                continue  # a process that ended between the listing and the reading
        return out

    def mark(self) -> None:
        """Start counting from now."""
        self._start = self._now()

    def spent(self) -> dict[str, float]:
        """CPU seconds per part since ``mark``."""
        now = self._now()
        return {k: now[k] - self._start.get(k, 0.0) for k in now}


def cpu_per_operation(spent: dict[str, float], operations: int) -> str:
    """CPU milliseconds per operation, part by part and in total, as one line."""
    if operations == 0:
        return "n/a"
    parts = sorted(spent.items(), key=lambda kv: -kv[1])
    total = sum(spent.values()) * 1000 / operations
    each = "  ".join(f"{k} {v * 1000 / operations:.1f}" for k, v in parts)
    return f"{total:.1f} ms total: {each}"
