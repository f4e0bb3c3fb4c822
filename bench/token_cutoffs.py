"""Benchmark the revocation check: what every authenticated request pays for it.

The verifier asks the service's own ``token_cutoffs`` table for the caller's
account once per request (``runtime.revocation_store.CutOffs.revoked``: a pooled
connection, one primary-key read). This starts a scratch PostgreSQL, migrates
reporting's database (any verifying service has the same table), writes
``--accounts`` cut-offs, and times ``-n`` checks for an account that has a cut-off
and for one that has none: p50/p95/p99, with the load average (the figures are
wall-clock times on a shared machine).

Run:  python bench/token_cutoffs.py            (a few seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import create_async_engine

from prodigy_users.runtime.db import ensure_database, upgrade
from prodigy_users.runtime.revocation_store import CutOffs, token_cutoffs
from prodigy_users.stack.postgres import scratch_postgres


def _percentiles(samples: list[float]) -> str:
    samples.sort()
    at = [samples[int(len(samples) * q) - 1] * 1000 for q in (0.5, 0.95, 0.99)]
    return "p50 {:.3f} ms  p95 {:.3f} ms  p99 {:.3f} ms".format(*at)


async def main(accounts: int, n: int) -> None:
    async with scratch_postgres(prefix="cutoffs-bench-") as pg:
        url = pg.database_url("reporting")
        await ensure_database(url)
        await asyncio.to_thread(upgrade, "reporting", url)
        engine = create_async_engine(url)
        try:
            ids = [uuid.uuid4() for _ in range(accounts)]
            now = datetime.now(UTC)
            async with engine.begin() as conn:
                for start in range(0, accounts, 5000):
                    rows = [{"account_id": i, "not_before": now} for i in ids[start : start + 5000]]
                    await conn.execute(pg_insert(token_cutoffs), rows)
            cutoffs = CutOffs(engine)
            for _ in range(200):  # warm the pool and the cache
                await cutoffs.revoked(ids[0], time.time())
            for label, pick in (
                ("with a cut-off", lambda k: ids[k % accounts]),
                ("without one", lambda k: uuid.uuid4()),
            ):
                samples = []
                for k in range(n):
                    account = pick(k)
                    started = time.perf_counter()
                    await cutoffs.revoked(account, time.time())
                    samples.append(time.perf_counter() - started)
                print(f"account {label:15} {_percentiles(samples)}")
        finally:
            await engine.dispose()
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("-n", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(main(args.accounts, args.n))
