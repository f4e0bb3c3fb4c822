"""Notifications' use cases in one typed container: ``app.py`` builds it once the
runtime's engine exists, ``deps.py`` hands its parts to the routes. (Delivery is a
background worker, not a route's: ``delivery.deliver`` builds it.)"""

from __future__ import annotations

from dataclasses import dataclass

from .service import EmailLog


@dataclass(frozen=True)
class Notifications:
    """What notifications' routes may call."""

    email_log: EmailLog
