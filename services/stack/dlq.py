"""``prodigy-users dlq list|show|replay SERVICE``: the dead letters a service's consumer
kept in its database, and replaying chosen ones once their cause is fixed.

A replay feeds each stored message through the service's own consumer path (its
handler table, its inbox: an effect already there is not made twice) in one
transaction, and records on each dead letter what became of it. The events the
handlers emit go to the service's outbox, which its running relay publishes.
Settings as for ``prodigy-users replay`` (``stack.environment``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import DEFAULT_DATA_DIR, SERVICES
from .environment import NoSettings, use_service_environment

if TYPE_CHECKING:  # imported where used: the CLI parses its arguments on every start
    from sqlalchemy.ext.asyncio import AsyncEngine

    from prodigy_users.runtime.dead_letter_store import StoredDeadLetter

COMMAND = "prodigy-users dlq"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``list``, ``show`` and ``replay``, each with the service and ``--data-dir``."""
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the service's dead letters, oldest first")
    show = actions.add_parser("show", help="one dead letter in full (JSON)")
    replay = actions.add_parser(
        "replay", help="apply chosen dead letters again through the service's consumer"
    )
    for action in (listing, show, replay):
        action.add_argument("service", choices=SERVICES, help="whose consumer")
        action.add_argument(
            "--data-dir",
            type=Path,
            default=Path(DEFAULT_DATA_DIR),
            help="the embedded stack's data dir (used when PRODIGY_DATABASE_URL is not set)",
        )
    listing.add_argument(
        "--unreplayed",
        action="store_true",
        help="only those no replay has applied yet (never replayed, or failed again)",
    )
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    show.add_argument("id", type=int, help="the dead letter's id (from `dlq list`)")
    replay.add_argument(
        "--id",
        dest="ids",
        type=int,
        action="append",
        required=True,
        metavar="ID",
        help="a dead letter to replay (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the action; the exit code (1: unknown ids, or a replay that failed again)."""
    try:
        use_service_environment(args.service, args.data_dir)
    except NoSettings as exc:
        return _fail(str(exc))
    action = {"list": _list, "show": _show, "replay": _replay}[args.action]
    return asyncio.run(action(args))


def _fail(message: str) -> int:
    print(f"{COMMAND}: {message}", file=sys.stderr)
    return 1


def _engine(service: str) -> AsyncEngine:
    from prodigy_users.runtime.db import make_engine

    settings = importlib.import_module(f"prodigy_users.{service}.settings").Settings()
    return make_engine(settings.database_url, pool_size=2)


def _text_or_base64(name: str, raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        return {name: None}
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(raw).decode()}
    return {name: text}


def _summary(letter: StoredDeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "dead_lettered_at": letter.dead_lettered_at.isoformat(),
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "event_id": str(letter.event_id) if letter.event_id else None,
        "type": letter.type,
        "reason": letter.reason,
        "replays": letter.replays,
        "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
        "replay_outcome": letter.replay_outcome,
        "replay_reason": letter.replay_reason,
    }


async def _list(args: argparse.Namespace) -> int:
    from prodigy_users.runtime import dead_letter_store

    engine = _engine(args.service)
    try:
        letters = await dead_letter_store.listing(
            engine, args.service, unsettled_only=args.unreplayed, limit=args.limit
        )
    finally:
        await engine.dispose()
    if args.json:
        print(json.dumps([_summary(d) for d in letters], indent=2))
        return 0
    if not letters:
        print(f"{args.service}: no dead letters")
        return 0
    print(_table([_row(d) for d in letters]))
    return 0


def _row(letter: StoredDeadLetter) -> list[str]:
    where = f"{letter.topic}[{letter.partition}]@{letter.offset}"
    last = letter.replay_outcome or "-"
    reason = letter.reason if len(letter.reason) <= 80 else letter.reason[:77] + "..."
    when = letter.dead_lettered_at.strftime("%Y-%m-%d %H:%M:%S")
    return [str(letter.id), when, where, letter.type or "-", str(letter.replays), last, reason]


def _table(rows: Sequence[list[str]]) -> str:
    head = ["ID", "DEAD-LETTERED (UTC)", "FROM", "TYPE", "REPLAYS", "LAST REPLAY", "REASON"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    )


async def _show(args: argparse.Namespace) -> int:
    from prodigy_users.runtime import dead_letter_store

    engine = _engine(args.service)
    try:
        found = await dead_letter_store.fetch(engine, args.service, [args.id])
    finally:
        await engine.dispose()
    letter = found.get(args.id)
    if letter is None:
        return _fail(f"{args.service} has no dead letter {args.id}")
    out = _summary(letter)
    out.update(_text_or_base64("key", letter.key))
    out["headers"] = dead_letter_store.encode_headers(letter.headers)
    out.update(_text_or_base64("body", letter.body))
    print(json.dumps(out, indent=2))
    return 0


async def _replay(args: argparse.Namespace) -> int:
    from faststream.kafka import KafkaBroker

    from prodigy_users.runtime import dead_letter_store
    from prodigy_users.runtime.consumer import Consumer
    from prodigy_users.runtime.logging import configure_logging

    spec = importlib.import_module(f"prodigy_users.{args.service}.app").spec()
    settings = spec.settings
    configure_logging(f"{args.service}-dlq", "WARNING", json=False)
    engine = _engine(args.service)
    try:
        found = await dead_letter_store.fetch(engine, spec.name, args.ids)
        missing = sorted(set(args.ids) - set(found))
        if missing:
            return _fail(f"{args.service} has no dead letter {', '.join(map(str, missing))}")
        consumer = Consumer(
            spec.name,
            engine,
            # Never started: a replay publishes nothing itself (the outbox does).
            KafkaBroker(settings.kafka_bootstrap_servers),
            settings,
            spec.handlers,
            batch_handler=spec.batch_handler,
            batch_types=spec.batch_types,
            ignored=spec.ignored,
        )
        done = await consumer.apply_stored([found[i] for i in sorted(found)])
    finally:
        await engine.dispose()
    print(json.dumps([{"id": r.id, "outcome": r.outcome, "reason": r.reason} for r in done]))
    again = [r.id for r in done if r.outcome not in dead_letter_store.SETTLED]
    if again:
        return _fail(f"still failing: {', '.join(map(str, again))} (see `dlq show`)")
    return 0
