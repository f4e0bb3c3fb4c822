"""How long the services take to be ready: the whole embedded stack, and each service
killed and started again (what a Kubernetes rollout or an autoscaler waits on).

For each service it prints the time from spawning the process to a green ``/readyz``
and, from the service's own log, where that time went: interpreter and imports until the
app's lifespan begins, the migration check, the rest of the start-up, and the broker's
connection and the consumers' group join (which ``/readyz`` does not wait for), measured
from the spawn. Import time is also measured
on its own (``python -X importtime``, the service's app module, cumulative).

    python bench/startup.py            # 3 restarts per service
    python bench/startup.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prodigy_users.stack import SERVICES
from prodigy_users.stack.supervisor import Ports, Stack, StackConfig

# Log events of ``runtime.service`` that mark the phases of a start.
PHASES = (
    "lifespan starting",
    "migrations checked",
    "service started",
    "broker connected",
    "consumers joined",
)


def import_seconds(service: str) -> float:
    """Cumulative import time of the service's app module (``-X importtime``)."""
    module = f"prodigy_users.{service}.app"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            return int(parts[1]) / 1e6
    raise RuntimeError(f"{module} not in the import log")


def phase_times(log_path: Path, since: float) -> dict[str, float]:
    """Seconds after ``since`` (a wall-clock time) at which each phase's log line came."""
    found: dict[str, float] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        event, stamp = record.get("event"), record.get("timestamp")
        if event not in PHASES or not isinstance(stamp, str):
            continue
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        if at >= since:
            found.setdefault(event, at - since)
    return found


def row(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<34} {'-':>8}"
    return f"{name:<34} {statistics.median(values):8.2f} {max(values):8.2f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    imports = {s: [import_seconds(s) for _ in range(args.rounds)] for s in SERVICES}

    data = Path(tempfile.mkdtemp(prefix="prodigy-startup-"))
    stack = Stack(StackConfig(data_dir=data, ports=Ports.free(), fresh=True))
    began = time.monotonic()
    try:
        await stack.start()
        whole = time.monotonic() - began
        ready: dict[str, list[float]] = {s: [] for s in SERVICES}
        phases: dict[str, dict[str, list[float]]] = {s: {p: [] for p in PHASES} for s in SERVICES}
        for _ in range(args.rounds):
            for service in SERVICES:
                await stack.stop_service(service, kill=True)
                spawned = time.time()
                t0 = time.monotonic()
                await stack.start_service(service, consumers=False)
                ready[service].append(time.monotonic() - t0)
                # The next kill waits until this one's consumers are back in their groups.
                await stack.start_service(service)
                for phase, at in phase_times(stack.log_path(service), spawned).items():
                    phases[service][phase].append(at)
        await stack.stop()
        # Again on the same data directory: PostgreSQL's cluster and every database
        # exist, the migrations are applied (what a second ``prodigy-users up`` does).
        stack = Stack(StackConfig(data_dir=data, ports=Ports.free(), fresh=False))
        began = time.monotonic()
        await stack.start()
        again = time.monotonic() - began
    finally:
        await stack.stop()
        shutil.rmtree(data, ignore_errors=True)

    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, {os.cpu_count()} cores")
    print("whole embedded stack ready (PostgreSQL, broker, mail, 4 services, consumers joined):")
    print(f"  in a new data directory: {whole:.1f} s; again in the same one: {again:.1f} s\n")
    print(f"{'seconds (median, max)':<34} {'median':>8} {'max':>8}")
    for service in SERVICES:
        print(f"-- {service} (killed and started again, {args.rounds} times)")
        print(row("  import of the app (-X importtime)", imports[service]))
        for phase in PHASES:
            print(row(f"  {phase} (after spawn)", phases[service][phase]))
        print(row("  /readyz green (after spawn)", ready[service]))


if __name__ == "__main__":
    if not re.match(r"3\.(1[1-9]|[2-9]\d)", sys.version):
        sys.exit("Python 3.11+")
    asyncio.run(main())
