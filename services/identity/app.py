"""Identity's wiring root."""

from __future__ import annotations

import json
from datetime import timedelta

from prodigy_users.runtime.auth import TokenIssuer
from prodigy_users.runtime.keys import load_private_key
from prodigy_users.runtime.service import Runtime, ServiceSpec

from .addresses import Addresses, AddressLinks
from .api import router
from .confirmations import Confirmations
from .consumers import handlers
from .container import Identity, Jwks
from .errors import PROBLEMS
from .links import Links
from .merges import Merges
from .passwords import SealedPasswords
from .profile import Profiles
from .service import Accounts
from .settings import Settings


def _issuer(settings: Settings) -> tuple[TokenIssuer | None, Jwks]:
    if settings.signing_key_path is None or settings.jwks_path is None:
        return None, {"keys": []}
    jwks = json.loads(settings.jwks_path.read_text())
    kid = jwks["keys"][0]["kid"]
    issuer = TokenIssuer(
        load_private_key(settings.signing_key_path),
        kid=kid,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )
    return issuer, jwks


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Identity as a ServiceSpec for ``runtime.service.build_app``."""
    settings = settings or Settings()
    issuer, jwks = _issuer(settings)
    # Links need no engine: the consumer's handlers issue them in its unit of work.
    links = Links(settings)
    passwords = SealedPasswords(settings.identity_seal_private_key_path)
    confirmations = Confirmations(links, timedelta(seconds=settings.email_confirmation_ttl_s))

    def container(runtime: Runtime) -> Identity:
        accounts = Accounts(runtime.engine, settings, issuer, links, confirmations)
        profiles = Profiles(
            runtime.engine,
            links,
            confirmations,
            timedelta(seconds=settings.email_change_ttl_s),
        )
        addresses = Addresses(
            runtime.engine,
            links,
            AddressLinks(confirmations),
            timedelta(seconds=settings.email_change_ttl_s),
        )
        return Identity(
            accounts=accounts,
            jwks=jwks,
            profiles=profiles,
            addresses=addresses,
            merges=Merges(runtime.engine),
        )

    async def sweep_unconfirmed(runtime: Runtime) -> None:
        await runtime.use_cases(Identity).accounts.sweep_forever()

    return ServiceSpec(
        name="identity",
        settings=settings,
        title="Prodigy identity",
        description="Global accounts (one per email, for life), credentials and access tokens.",
        routers=[router],
        problems=PROBLEMS,
        handlers=handlers(links, confirmations, passwords),
        container=container,
        background=[sweep_unconfirmed],
        throttled=True,
    )
