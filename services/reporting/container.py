"""Reporting's use cases in one typed container: ``app.py`` builds it once the runtime's
engine exists, ``deps.py`` hands its parts to the routes."""

from __future__ import annotations

from dataclasses import dataclass

from .activity.service import ActivityLog
from .record.service import Records
from .users.service import UsersTable


@dataclass(frozen=True)
class Reporting:
    """What reporting's routes may call."""

    users: UsersTable
    records: Records
    activity: ActivityLog
