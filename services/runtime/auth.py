"""Access tokens: identity signs them (RS256, ``kid``); every service verifies locally."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, Request

from .errors import Unauthenticated
from .revocation_store import CutOffs

OPERATOR_SCOPE = "platform:operator"
# Operators act with the signing key, not with an account: their tokens name this
# subject. No account has it (accounts get random version-4 ids), and it is not the
# "nobody signed in" of a registration, so nothing an operator asked for is ever
# mistaken for something anyone may read.
OPERATOR_SUBJECT = uuid.UUID("00000000-0000-0000-0000-00000000000f")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account, with the scopes its token grants."""

    account_id: uuid.UUID
    scopes: frozenset[str] = field(default_factory=frozenset)
    # The token's ``iat`` (seconds since the epoch, with microseconds when identity
    # signed it after revocation existed); checked against the account's cut-off.
    issued_at: float | None = None

    @property
    def is_operator(self) -> bool:
        """Platform operators may create departments."""
        return OPERATOR_SCOPE in self.scopes


class TokenIssuer:
    """Signs access tokens with identity's private key."""

    def __init__(
        self, private_key: rsa.RSAPrivateKey, *, kid: str, issuer: str, audience: str
    ) -> None:
        self._key = private_key
        self._kid = kid
        self._issuer = issuer
        self._audience = audience

    def issue(self, subject: uuid.UUID, *, ttl: timedelta, scopes: tuple[str, ...] = ()) -> str:
        """A signed token for ``subject`` valid for ``ttl``."""
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "sub": str(subject),
            "iss": self._issuer,
            "aud": self._audience,
            # With microseconds (a float; RFC 7519 allows it): a token issued in the
            # second of a revocation, but after it, must stay valid
            # (``revocation_rules``). ``nbf`` and ``exp`` stay whole seconds.
            "iat": now.timestamp(),
            "nbf": now,
            "exp": now + ttl,
            "jti": str(uuid.uuid4()),
        }
        if scopes:
            claims["scope"] = " ".join(scopes)
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})


class TokenVerifier:
    """Checks signature, issuer, audience and expiry against a JWKS."""

    def __init__(self, jwks: dict[str, Any], *, issuer: str, audience: str) -> None:
        self._keys = {k["kid"]: jwt.PyJWK(k) for k in jwks["keys"]}
        self._issuer = issuer
        self._audience = audience

    @classmethod
    def from_file(cls, path: Path, *, issuer: str, audience: str) -> TokenVerifier:
        """Load the JWKS identity publishes (a file from a ConfigMap, or the dev stack)."""
        return cls(json.loads(path.read_text()), issuer=issuer, audience=audience)

    def verify(self, token: str) -> Principal:
        """The principal in a valid token; ``Unauthenticated`` otherwise."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise jwt.InvalidTokenError("unknown signing key")
            claims = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
            issued_at = claims.get("iat")
            return Principal(
                account_id=uuid.UUID(claims["sub"]),
                scopes=frozenset(str(claims.get("scope", "")).split()),
                issued_at=float(issued_at) if isinstance(issued_at, int | float) else None,
            )
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise Unauthenticated("The access token is invalid or expired.") from exc


def bearer_token(request: Request) -> str | None:
    """The bearer token of a request, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def optional_principal(request: Request) -> Principal | None:
    """The caller if a token was sent (an invalid one is still a 401)."""
    token = bearer_token(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.verifier
    principal = verifier.verify(token)
    # A revoked token (password set, signed out everywhere) is refused like an expired
    # one: one primary-key lookup in the service's own copy of the cut-offs.
    cutoffs: CutOffs | None = getattr(request.app.state, "cutoffs", None)
    if cutoffs is not None and await cutoffs.revoked(principal.account_id, principal.issued_at):
        raise Unauthenticated("The access token is invalid or expired.")
    return principal


async def require_principal(request: Request) -> Principal:
    """The caller; 401 without a valid token."""
    principal = await optional_principal(request)
    if principal is None:
        raise Unauthenticated()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]
