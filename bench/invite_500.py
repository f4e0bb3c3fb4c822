"""Benchmark "invite 500 people at once" on the embedded stack.

Starts its own stack (temporary data directory, free ports) unless ``--keys-dir`` and
the URLs of a running one are given, then, ``--runs`` times (each in a new
department), invites ``-n`` (default 500) new addresses in ONE request and prints:

  (a) the time from the request to its response (every address has its outcome),
  (b) the time from the request until the first and the last of the invitation
      emails is captured (the capture's own ``received_at`` stamps, not poll times).

A small warm-up invitation runs first (connections, caches, the first Kafka fetches).

Run:  python bench/invite_500.py            (under a minute on 2 cores)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from harness import add_target_arguments, target

from tests.support import Admin, Api, invite


async def captured_at(api: Api, expected: set[str], timeout: float) -> dict[str, float]:
    """Poll the capture until a mail to every expected address is in; when each arrived."""
    arrived: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while not expected <= arrived.keys():
        if time.monotonic() > deadline:
            missing = len(expected - arrived.keys())
            raise SystemExit(f"{missing} of {len(expected)} emails not captured in {timeout} s")
        for mail in await api.mails():
            for to in mail["to"]:
                if to in expected and to not in arrived:
                    arrived[to] = datetime.fromisoformat(mail["received_at"]).timestamp()
        await asyncio.sleep(0.1)
    return arrived


async def one_run(api: Api, admin: Admin, n: int, timeout: float) -> dict[str, float]:
    """Invite ``n`` new addresses in one request; the figures of that run, in seconds."""
    tag = uuid.uuid4().hex[:8]
    emails = [f"bench{i:04d}-{tag}@example.org" for i in range(n)]
    started = time.time()
    t0 = time.perf_counter()
    r = await invite(api, admin, emails)
    response = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    outcomes = {x["outcome"] for x in r.json()["results"]}
    assert outcomes == {"invited"}, outcomes
    arrived = await captured_at(api, set(emails), timeout)
    return {
        "response": response,
        "first_email": min(arrived.values()) - started,
        "last_email": max(arrived.values()) - started,
    }


async def main(args: argparse.Namespace) -> None:
    async with target(args) as api:
        api.http.timeout = httpx.Timeout(120.0)  # one big request
        warm = await api.create_department()
        await one_run(api, warm, 10, args.timeout)
        print(f"\ninviting {args.n} new addresses in one request, {args.runs} run(s):")
        print(f"  {'run':>3}  {'(a) response':>13}  {'(b) first email':>16}  {'last email':>11}")
        results = []
        for run in range(1, args.runs + 1):
            admin = await api.create_department()
            figures = await one_run(api, admin, args.n, args.timeout)
            results.append(figures)
            print(
                f"  {run:>3}  {figures['response']:>11.2f} s  {figures['first_email']:>14.2f} s"
                f"  {figures['last_email']:>9.2f} s",
                flush=True,
            )
        last = sorted(r["last_email"] for r in results)
        print(
            f"\nrequest -> last of {args.n} emails captured: median {last[len(last) // 2]:.2f} s,"
            f" worst {last[-1]:.2f} s ({args.n / last[len(last) // 2]:.0f} emails/s)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=500, help="addresses per request (default 500)")
    parser.add_argument("--runs", type=int, default=3, help="how many times (default 3)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for mail")
    add_target_arguments(parser)
    asyncio.run(main(parser.parse_args()))
