"""Chaos: faults in the middle of a load, and what the system made of them.

Starts its own embedded stack (temporary data directory, free ports). For each fault
kind and each round it runs a load of adds through membership's HTTP API, as a careful
client would (a few in flight, each with its own ``Idempotency-Key``, retried with the
same key on a cut connection or a 5xx), injects the fault when a third of the load is
answered, brings the part back after ``--down`` seconds, and counts:

  accepted    adds the API accepted (201, 202, or 409 already-member on a retry whose
              first answer was lost)
  lost        accepted people who never showed up in the users table, or whose
              credentials email never arrived, by the deadline
  duplicated  people with more than one credentials email captured, or more than one
              row in the users table
  errors      answers a careful client should never get (a 4xx other than the above,
              or no answer at all by the deadline)
  recovery    seconds from the part's return until a probe add completes end to end
              (answered, its email captured, in the users table)

Fault kinds: kill (SIGKILL) each of the four services, kill the broker, kill
PostgreSQL, the mail relay gone, two at once (``broker-in-lease``: the relay gone and
the broker killed while notifications holds leases on the emails it cannot send), and
``import-kill-membership``: a bulk upload of ``--import-rows`` people with every
membership process killed a third of the way in (``accepted`` is then the file's rows).
The supervisor restarts the broker and PostgreSQL itself, as Kubernetes would; killed
services are started again by this script.

Run:  python bench/chaos.py --rounds 1        (about 5 minutes on 2 cores)
      python bench/chaos.py --rounds 3 --faults kill-broker,kill-postgres
      python bench/chaos.py --replicas 2 --faults mail-down --down 300 --load 200
      python bench/chaos.py --replicas 2 --faults import-kill-membership,broker-in-lease
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import target_stack

from tests.support import Admin, Api, random_email

SERVICES = ("identity", "membership", "notifications", "reporting")
FAULTS = (
    *(f"kill-{s}" for s in SERVICES),
    "kill-broker",
    "kill-postgres",
    "mail-down",
    "broker-in-lease",
    "import-kill-membership",
)


@dataclass
class Round:
    """What one round of one fault kind gave."""

    accepted: int = 0
    lost: int = 0
    duplicated: int = 0
    errors: int = 0
    recovery_s: float = float("nan")
    notes: list[str] = field(default_factory=list)


async def add_carefully(api: Api, admin: Admin, email: str, deadline: float) -> str:
    """Add ``email`` as a careful client would; the outcome ('accepted' or why not)."""
    key = str(uuid.uuid4())
    url = api.url("membership", f"/v1/departments/{admin.department_id}/members")
    body = {"name": "Chaos Person", "email": email, "role": "member"}
    retried = False
    while time.monotonic() < deadline:
        try:
            r = await api.http.post(
                url, json=body, headers={**admin.headers, "Idempotency-Key": key}
            )
        except httpx.TransportError:
            retried = True
            await asyncio.sleep(0.5)  # a client's back-off, not a synchronisation
            continue
        if r.status_code in (201, 202):
            return "accepted"
        if r.status_code == 409 and retried and r.json().get("type", "").endswith("already-member"):
            return "accepted"
        if r.status_code >= 500 or r.status_code == 429:
            retried = True
            await asyncio.sleep(0.5)
            continue
        return f"{r.status_code} {r.text[:120]}"
    return "no answer by the deadline"


async def outcome(api: Api, admin: Admin, people: list[str]) -> tuple[Counter[str], Counter[str]]:
    """Rows per address in the users table, and credentials emails per address."""
    rows: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = await api.http.get(
            api.url("reporting", f"/v1/reports/departments/{admin.department_id}/users"),
            params=params,
            headers=admin.headers,
        )
        if r.status_code != 200:
            break
        page = r.json()
        rows.update(item["email"].lower() for item in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    wanted = {p.lower() for p in people}
    mails: Counter[str] = Counter()
    try:
        for m in await api.mails():
            for to in m["to"]:
                if to.lower() in wanted:
                    mails[to.lower()] += 1
    except httpx.HTTPError:
        pass  # the relay (the capture) is away: nothing counted yet
    return rows, mails


async def settled(
    api: Api, admin: Admin, people: list[str], timeout: float
) -> tuple[Counter[str], Counter[str]]:
    """Wait (with a deadline) until every person is in the table with their email."""
    deadline = time.monotonic() + timeout
    while True:
        rows, mails = await outcome(api, admin, people)
        if all(rows[p.lower()] and mails[p.lower()] for p in people):
            return rows, mails
        if time.monotonic() > deadline:
            return rows, mails
        await asyncio.sleep(0.5)  # polling interval


async def probe(api: Api, admin: Admin, timeout: float) -> float:
    """Seconds until one add completes end to end (answer, email, users table)."""
    started = time.monotonic()
    email = random_email("probe")
    if await add_carefully(api, admin, email, started + timeout) != "accepted":
        return float("nan")
    rows, mails = await settled(api, admin, [email], timeout - (time.monotonic() - started))
    if not (rows[email.lower()] and mails[email.lower()]):
        return float("nan")
    return time.monotonic() - started


def injector(stack: Any, fault: str, down: float) -> Callable[[], Awaitable[None]]:
    """The fault, held for ``down`` seconds, then the part brought back."""

    async def inject() -> None:
        if fault.startswith("kill-") and fault[5:] in SERVICES:
            await stack.stop_service(fault[5:], kill=True)
            await asyncio.sleep(down)
            await stack.start_service(fault[5:])
        elif fault == "kill-broker":
            await stack.kill_broker()  # the supervisor starts a new (empty) broker
            await asyncio.sleep(down)
        elif fault == "kill-postgres":
            pid = stack.postgres.pid
            assert pid is not None, "no embedded PostgreSQL to kill"
            os.kill(pid, signal.SIGKILL)  # the supervisor starts it again
            await asyncio.sleep(down)
        elif fault == "mail-down":
            await stack.stop_mail()
            await asyncio.sleep(down)
            await stack.start_mail()
        elif fault == "broker-in-lease":
            # Two at once: with the relay away, notifications holds leases on emails it
            # cannot send; the broker dies under them; the relay comes back after.
            await stack.stop_mail()
            await asyncio.sleep(min(1.0, down))
            await stack.kill_broker()
            await asyncio.sleep(down)
            await stack.start_mail()
        else:
            raise ValueError(fault)

    return inject


def people_csv(people: list[str]) -> bytes:
    """A bulk-upload file adding ``people``."""
    lines = ["Name,Email,Role", *(f"Chaos Person,{p},member" for p in people)]
    return ("\r\n".join(lines) + "\r\n").encode()


async def import_round(api: Api, stack: Any, args: argparse.Namespace) -> Round:
    """A bulk upload with membership killed (every replica) a third of the way in."""
    admin = await api.create_department()
    people = [random_email("import") for _ in range(args.import_rows)]
    result = Round()
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/imports"),
        files={"file": ("people.csv", people_csv(people), "text/csv")},
        headers=admin.headers,
    )
    if r.status_code != 202:
        result.errors = len(people)
        result.notes.append(f"upload answered {r.status_code} {r.text[:120]}")
        return result
    import_id = r.json()["import_id"]
    status_url = api.url("membership", f"/v1/departments/{admin.department_id}/imports/{import_id}")
    deadline = time.monotonic() + args.deadline
    while True:  # until a third of the rows have people in the users table
        rows, _ = await outcome(api, admin, people)
        if len(rows) >= len(people) // 3 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)  # polling interval
    await injector(stack, "kill-membership", args.down)()
    recovery = asyncio.create_task(probe(api, admin, args.deadline))
    rows, mails = await settled(api, admin, people, args.deadline)
    result.recovery_s = await recovery
    result.accepted = len(people)
    for p in people:
        if not rows[p.lower()] or not mails[p.lower()]:
            result.lost += 1
        if rows[p.lower()] > 1 or mails[p.lower()] > 1:
            result.duplicated += 1
    body = (await api.http.get(status_url, headers=admin.headers)).json()
    result.notes.append(f"import {body.get('status')} {body.get('counts')}")
    return result


async def one_round(api: Api, stack: Any, fault: str, args: argparse.Namespace) -> Round:
    if fault == "import-kill-membership":
        return await import_round(api, stack, args)
    admin = await api.create_department()
    people = [random_email(fault) for _ in range(args.load)]
    result = Round()
    answered = 0
    fault_due = asyncio.Event()
    turns = asyncio.Semaphore(args.in_flight)
    deadline = time.monotonic() + args.deadline

    async def add(email: str) -> str:
        nonlocal answered
        async with turns:
            got = await add_carefully(api, admin, email, deadline)
        answered += 1
        if answered >= args.load // 3:
            fault_due.set()
        return got

    load = asyncio.gather(*(add(p) for p in people))
    await fault_due.wait()
    await injector(stack, fault, args.down)()
    recovery = asyncio.create_task(probe(api, admin, args.deadline))
    outcomes = await load
    result.recovery_s = await recovery
    accepted = [p for p, o in zip(people, outcomes, strict=True) if o == "accepted"]
    result.accepted = len(accepted)
    result.errors = len(people) - len(accepted)
    result.notes += [o for o in outcomes if o != "accepted"][:3]
    rows, mails = await settled(api, admin, accepted, args.deadline)
    for p in accepted:
        if not rows[p.lower()] or not mails[p.lower()]:
            result.lost += 1
        if rows[p.lower()] > 1 or mails[p.lower()] > 1:
            result.duplicated += 1
    return result


def table(results: dict[str, list[Round]]) -> str:
    lines = [
        "fault                  | rounds | accepted | lost | duplicated | errors | recovery s",
        "-----------------------|--------|----------|------|------------|--------|-----------",
    ]
    for fault, rounds in results.items():
        times = [r.recovery_s for r in rounds if r.recovery_s == r.recovery_s]
        rec = f"{statistics.median(times):.1f} / {max(times):.1f}" if times else "never"
        lines.append(
            f"{fault:<23}| {len(rounds):>6} | {sum(r.accepted for r in rounds):>8} | "
            f"{sum(r.lost for r in rounds):>4} | {sum(r.duplicated for r in rounds):>10} | "
            f"{sum(r.errors for r in rounds):>6} | {rec}"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    faults = args.faults.split(",") if args.faults else list(FAULTS)
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise SystemExit(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    args.keys_dir = None  # always a stack of its own: the faults need its supervisor
    results: dict[str, list[Round]] = {f: [] for f in faults}
    async with target_stack(args) as (api, stack):
        for n in range(args.rounds):
            for fault in faults:
                started = time.monotonic()
                r = await one_round(api, stack, fault, args)
                results[fault].append(r)
                print(
                    f"round {n + 1} {fault}: accepted {r.accepted}, lost {r.lost}, "
                    f"duplicated {r.duplicated}, errors {r.errors}, "
                    f"recovery {r.recovery_s:.1f} s ({time.monotonic() - started:.0f} s)"
                    + (f"; notes: {r.notes}" if r.notes else ""),
                    flush=True,
                )
    print()
    print(table(results))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every fault kind")
    parser.add_argument("--faults", default="", help=f"comma-separated, of: {', '.join(FAULTS)}")
    parser.add_argument("--load", type=int, default=30, help="adds per round")
    parser.add_argument("--in-flight", type=int, default=4, help="adds in flight at once")
    parser.add_argument("--down", type=float, default=3.0, help="seconds a part stays away")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds to settle")
    parser.add_argument("--replicas", type=int, default=1, help="processes per service")
    parser.add_argument(
        "--import-rows", type=int, default=300, help="people in the import-kill-membership file"
    )
    asyncio.run(main(parser.parse_args()))
