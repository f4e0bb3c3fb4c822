"""``prodigy-users accounts duplicates``: accounts that may be one person's (a report).

Two accounts are reported together when their names are equal once normalised
(case, accents, spacing and punctuation aside) and they hold an address at the same
domain (login emails and linked addresses alike), or when their names are exactly
equal. Nothing is changed: an operator reads the report and decides (people do share
names). Reads identity's database (``$PRODIGY_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Holder:
    """An account, its name and every address it holds."""

    account_id: uuid.UUID
    name: str
    emails: tuple[str, ...]


@dataclass(frozen=True)
class Suspects:
    """Accounts that may be one person's, and why."""

    reason: str  # "same name" or "similar name, same domain"
    key: str
    accounts: tuple[Holder, ...]


def name_key(name: str) -> str:
    """A name with case, accents, punctuation and spacing set aside."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    letters = "".join(c for c in decomposed if c.isalnum() or c.isspace())
    return " ".join(letters.split())


def _domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


def suspects(holders: Iterable[Holder]) -> list[Suspects]:
    """Groups of two or more accounts: equal names first, then similar names sharing an
    address domain (a group already reported for its equal name is not repeated)."""
    everyone = list(holders)
    by_name: dict[str, list[Holder]] = defaultdict(list)
    for h in everyone:
        by_name[h.name.strip()].append(h)
    found = [
        Suspects("same name", name, tuple(group))
        for name, group in sorted(by_name.items())
        if len(group) > 1
    ]
    reported = {frozenset(h.account_id for h in s.accounts) for s in found}
    by_key_domain: dict[tuple[str, str], list[Holder]] = defaultdict(list)
    for h in everyone:
        for domain in sorted({_domain(e) for e in h.emails}):
            by_key_domain[(name_key(h.name), domain)].append(h)
    for (key, domain), group in sorted(by_key_domain.items()):
        ids = frozenset(h.account_id for h in group)
        if len(ids) > 1 and ids not in reported:
            reported.add(ids)
            found.append(Suspects("similar name, same domain", f"{key} @{domain}", tuple(group)))
    return found


async def _holders(url: str) -> list[Holder]:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT a.id, a.name, array_agg(ad.email ORDER BY ad.login DESC, ad.email)"
                    " FROM accounts a JOIN account_addresses ad ON ad.account_id = a.id"
                    " WHERE a.email_confirmed_at IS NOT NULL GROUP BY a.id, a.name"
                )
            )
            return [Holder(r[0], r[1], tuple(r[2])) for r in rows]
    finally:
        await engine.dispose()


def add_parser(actions: Any) -> None:
    """The ``duplicates [--json]`` action of ``accounts``."""
    report = actions.add_parser(
        "duplicates",
        help="accounts that may be one person's: equal names, or similar names with an "
        "address at the same domain (a report: nothing is changed)",
    )
    report.add_argument("--json", action="store_true", help="one JSON object per group")


def run(args: argparse.Namespace) -> int:
    """Print the report; 0 whether or not anything was found."""
    url = os.environ.get("PRODIGY_DATABASE_URL")
    if not url:
        print("accounts: PRODIGY_DATABASE_URL is not set (identity's database)", file=sys.stderr)
        return 2
    groups = suspects(asyncio.run(_holders(url)))
    for group in groups:
        if args.json:
            print(
                json.dumps(
                    {
                        "reason": group.reason,
                        "key": group.key,
                        "accounts": [
                            {"account_id": str(h.account_id), "name": h.name, "emails": h.emails}
                            for h in group.accounts
                        ],
                    }
                )
            )
            continue
        print(f"{group.reason}: {group.key}")
        for h in group.accounts:
            print(f"  {h.account_id}  {h.name}  {', '.join(h.emails)}")
    if not args.json:
        print(f"{len(groups)} group(s) of accounts that may be one person's")
    return 0
