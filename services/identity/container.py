"""Identity's use cases in one typed container: ``app.py`` builds it once the runtime's
engine exists, ``deps.py`` hands its parts to the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .addresses import Addresses
from .merges import Merges
from .profile import Profiles
from .service import Accounts

Jwks = dict[str, Any]


@dataclass(frozen=True)
class Identity:
    """What identity's routes may call, and the public keys they publish."""

    accounts: Accounts
    jwks: Jwks
    profiles: Profiles
    addresses: Addresses
    merges: Merges
