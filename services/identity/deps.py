"""FastAPI dependencies for identity's routes: its use cases, its public keys, operators."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from prodigy_users.runtime.auth import CurrentPrincipal, Principal
from prodigy_users.runtime.errors import OperatorsOnly
from prodigy_users.runtime.service import use_cases

from .container import Identity, Jwks
from .service import Accounts

IdentityService = Annotated[Identity, Depends(use_cases(Identity))]


async def get_accounts(identity: IdentityService) -> Accounts:
    """Identity's use cases."""
    return identity.accounts


async def get_jwks(identity: IdentityService) -> Jwks:
    """The public keys that verify access tokens."""
    return identity.jwks


async def require_operator(principal: CurrentPrincipal) -> Principal:
    """Platform operators only."""
    if not principal.is_operator:
        raise OperatorsOnly()
    return principal


AccountsService = Annotated[Accounts, Depends(get_accounts)]
PublicKeys = Annotated[Jwks, Depends(get_jwks)]
Operator = Annotated[Principal, Depends(require_operator)]
