"""Load: many admins adding people at once, as fast as the answers come.

For each level of adds in flight (default 10, 50 and 100), that many admins of as
many departments each add people one after another for ``--seconds``; then the script
waits until every accepted add has its email and its users-table row, and prints:

- throughput (adds answered per second over the run), HTTP p50/p95/p99, errors;
- the exactly-once check: every accepted person got exactly one email and has
  exactly one row in their department's users table (lost and duplicated counts);
- the machine's load average at the end of the level;
- on a stack it started, the CPU each add cost, part by part (from the first request
  until every email and row is there): the figure that holds on a shared machine.

Run:  python bench/load_add_users.py                  (3 levels x 60 s, about 5 min)
      python bench/load_add_users.py --levels 50 --seconds 30
Starts its own embedded stack unless ``--keys-dir`` and URLs of a running one are given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import CpuMeter, add_target_arguments, cpu_per_operation, target_stack

from tests.support import Admin, Api, random_email


def quantiles_ms(values: list[float]) -> str:
    """p50/p95/p99 in milliseconds."""
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:6.0f} ms  p95 {q[94] * 1000:6.0f} ms  p99 {q[98] * 1000:6.0f} ms"


@dataclass
class Tally:
    """What a run of adds came to: who was accepted (by which admin), the answer times,
    the errors, and how many answers were 202."""

    added: dict[str, Admin] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    answered_202: int = 0


async def keep_adding(api: Api, admin: Admin, tally: Tally, done: Callable[[], bool]) -> None:
    """One admin adding people one after another, as fast as the answers come, until
    ``done()``."""
    while not done():
        email = random_email("load")
        t0 = time.perf_counter()
        try:
            r = await api.add_member(admin, email, name="Load Person")
        except Exception as exc:  # a cut connection counts as an error, not a crash
            tally.errors[type(exc).__name__] += 1
            continue
        tally.latencies.append(time.perf_counter() - t0)
        if r.status_code in (201, 202):
            tally.added[email] = admin
            tally.answered_202 += r.status_code == 202
        else:
            tally.errors[str(r.status_code)] += 1


async def level(api: Api, meter: CpuMeter | None, in_flight: int, seconds: float) -> None:
    """One level: ``in_flight`` admins adding people for ``seconds``."""
    admins = await asyncio.gather(*(api.create_department() for _ in range(in_flight)))
    if meter is not None:
        meter.mark()
    tally = Tally()
    deadline = time.perf_counter() + seconds

    def done() -> bool:
        return time.perf_counter() >= deadline

    began = time.perf_counter()
    await asyncio.gather(*(keep_adding(api, a, tally, done) for a in admins))
    elapsed = time.perf_counter() - began
    load = os.getloadavg()
    added, latencies, errors = tally.added, tally.latencies, tally.errors

    # Exactly once: one email per person, one row per person in their department.
    settle = time.perf_counter() + 180
    while True:
        mails = Counter(to for mail in await api.mails() for to in mail["to"] if to in added)
        if len(mails) >= len(added) or time.perf_counter() > settle:
            break
        await asyncio.sleep(0.5)
    rows: Counter[str] = Counter()
    for admin in admins:
        while True:
            rows_now = Counter(r["email"] for r in await api.report_users(admin))
            mine = {e for e, a in added.items() if a is admin}
            if mine <= rows_now.keys() or time.perf_counter() > settle:
                break
            await asyncio.sleep(0.5)
        rows.update({e: n for e, n in rows_now.items() if e in added})
    # Counted once every effect is there: the CPU an add costs from request to email.
    spent = meter.spent() if meter is not None else None
    lost_mail = sum(1 for e in added if mails[e] == 0)
    dup_mail = sum(1 for e in added if mails[e] > 1)
    lost_row = sum(1 for e in added if rows[e] == 0)
    dup_row = sum(1 for e in added if rows[e] > 1)

    print(f"\n{in_flight} in flight, {seconds:.0f} s (load average {load[0]:.1f}):")
    rate = len(latencies) / elapsed
    print(f"  adds answered   {len(latencies)} in {elapsed:.1f} s = {rate:.1f}/s")
    print(f"  HTTP            {quantiles_ms(latencies)}")
    print(f"  202 (outcome after the 2 s wait): {tally.answered_202}")
    print(f"  errors          {sum(errors.values())} {dict(errors) if errors else ''}")
    print(f"  emails          lost {lost_mail}, sent twice {dup_mail}")
    print(f"  users table     lost {lost_row}, twice {dup_row}")
    if spent is not None:
        print(f"  CPU per add     {cpu_per_operation(spent, len(added))} (ms)")


async def main(args: argparse.Namespace) -> None:
    async with target_stack(args) as (api, stack):
        meter = CpuMeter(stack) if stack is not None else None
        await level(api, meter, 2, 3)  # warm-up: connections, caches, consumers' first fetches
        for in_flight in args.levels:
            await level(api, meter, in_flight, args.seconds)
        print(f"\n{os.cpu_count()} cores")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seconds", type=float, default=60.0)
    add_target_arguments(parser)
    asyncio.run(main(parser.parse_args()))
