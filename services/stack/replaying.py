"""``prodigy-users replay reporting``: rebuild reporting's read model from the topics.

Settings come from the environment like the service's own (``PRODIGY_DATABASE_URL``,
``PRODIGY_KAFKA_BOOTSTRAP_SERVERS``, ...: a Kubernetes Job runs it with reporting's
environment), or, when ``PRODIGY_DATABASE_URL`` is not set, from the embedded
stack's ``<data-dir>/env/reporting.env``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from . import DEFAULT_DATA_DIR
from .environment import NoSettings, use_service_environment

REBUILDABLE = ("reporting",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("service", choices=REBUILDABLE, help="the read model to rebuild")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(DEFAULT_DATA_DIR),
        help="the embedded stack's data dir (used when PRODIGY_DATABASE_URL is not set)",
    )
    p.add_argument(
        "--idle-s",
        type=float,
        default=2.0,
        help="caught up once nothing new arrived for this long (default 2)",
    )
    p.add_argument(
        "--keep-old", action="store_true", help="keep the replaced schema (replaced_<generation>)"
    )


def run(args: argparse.Namespace) -> int:
    """Rebuild, print a JSON summary; progress goes to stderr."""
    from prodigy_users.reporting.replay import rebuild
    from prodigy_users.reporting.settings import Settings

    try:
        use_service_environment(args.service, args.data_dir)
    except NoSettings as exc:
        print(f"prodigy-users replay: {exc}", file=sys.stderr)
        return 1
    last = 0.0

    def progress(events: int, seconds: float) -> None:
        nonlocal last
        if time.monotonic() - last >= 1.0:
            last = time.monotonic()
            rate = events / seconds if seconds else 0.0
            print(f"replayed {events} events ({rate:,.0f}/s)", file=sys.stderr)

    done = asyncio.run(
        rebuild(Settings(), idle_s=args.idle_s, keep_old=args.keep_old, progress=progress)
    )
    print(
        json.dumps(
            {
                "service": args.service,
                "generation": done.generation,
                "events": done.events,
                "seconds": round(done.seconds, 3),
                "events_per_second": round(done.per_second, 1),
                "replaced_schema": done.replaced_schema,
            },
            indent=2,
        )
    )
    return 0
