"""Fixtures every notifications integration module uses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.databases import own_database


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    """A migrated notifications database on a PostgreSQL of its own (one per module)."""
    async with own_database("notifications") as eng:
        yield eng


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    """The private key notifications opens sealed tokens with (its public half seals them)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
