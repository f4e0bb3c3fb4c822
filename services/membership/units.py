"""Membership's units of work (its outbox rows name membership as their producer)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.runtime.uow import UnitOfWork

PRODUCER = "membership"


def unit_of_work(engine: AsyncEngine) -> UnitOfWork:
    """A unit of work on membership's database."""
    return UnitOfWork(engine, PRODUCER)
