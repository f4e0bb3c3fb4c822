"""The department's self-registration link: show it, replace it, switch it off."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.membership import RegistrationLinkChanged, Role

from ..units import unit_of_work
from . import store
from .rules import token_hash
from .tokens import LinkTokens


class RegistrationLinks:
    """Registration-link use cases (admins); joining through a link is ``entry``'s."""

    def __init__(self, engine: AsyncEngine, tokens: LinkTokens) -> None:
        self.engine = engine
        self.tokens = tokens

    def url(self, link_id: uuid.UUID) -> str:
        """The URL people open to register and join."""
        return self.tokens.join_url(link_id)

    async def link(self, department_id: uuid.UUID) -> Any:
        """The department's link row (None if never made)."""
        async with self.engine.connect() as conn:
            return await store.link(conn, department_id)

    async def rotate(
        self,
        department_id: uuid.UUID,
        role: Role,
        expires_at: datetime | None,
        allowed_domains: list[str],
    ) -> Any:
        """A new link; the old one stops working at once."""
        link_id = uuid.uuid4()
        now = datetime.now(UTC)
        async with unit_of_work(self.engine) as uow:
            await store.put_link(
                uow.conn,
                department_id,
                link_id=link_id,
                token_hash=token_hash(self.tokens.token("link", link_id)),
                role=role,
                expires_at=expires_at,
                allowed_domains=allowed_domains,
                enabled=True,
                created_at=now,
            )
            uow.emit(
                RegistrationLinkChanged(
                    department_id=department_id,
                    enabled=True,
                    role=role,
                    expires_at=expires_at,
                    allowed_domains=allowed_domains,
                ),
                key=department_id,
            )
            await uow.commit()
        return await self.link(department_id)

    async def disable(self, department_id: uuid.UUID) -> None:
        """Switch self-registration off."""
        async with unit_of_work(self.engine) as uow:
            if await store.disable_link(uow.conn, department_id):
                uow.emit(
                    RegistrationLinkChanged(department_id=department_id, enabled=False),
                    key=department_id,
                )
            await uow.commit()
