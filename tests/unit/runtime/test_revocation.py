"""The revocation rule: a token issued before its account's cut-off is refused, one
issued after it is accepted, within the same second too."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from prodigy_users.runtime.auth import TokenIssuer
from prodigy_users.runtime.revocation_rules import revoked

CUT = datetime(2026, 12, 5, 7, 45, 12, 700_000, tzinfo=UTC)
SECOND = CUT.replace(microsecond=0).timestamp()


def test_an_account_without_a_cut_off_keeps_its_tokens() -> None:
    assert not revoked(SECOND - 3600, None)
    assert not revoked(None, None)


def test_a_token_issued_before_the_cut_off_is_refused() -> None:
    assert revoked(SECOND - 1, CUT)
    assert revoked(SECOND + 0.2, CUT)  # earlier in the same second
    assert revoked(CUT.timestamp() - 0.000_001, CUT)


def test_a_token_issued_after_the_cut_off_in_the_same_second_is_accepted() -> None:
    assert not revoked(CUT.timestamp(), CUT)
    assert not revoked(SECOND + 0.9, CUT)
    assert not revoked(SECOND + 1, CUT)


def test_a_whole_second_iat_in_the_cut_offs_second_is_refused() -> None:
    # Tokens signed before ``iat`` had microseconds: nothing tells before from after.
    assert revoked(SECOND, CUT)


def test_a_token_without_iat_is_refused_once_there_is_a_cut_off() -> None:
    assert revoked(None, CUT)


def test_identity_signs_iat_with_microseconds_so_the_rule_can_tell() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = TokenIssuer(key, kid="k", issuer="iss", audience="aud")
    old = issuer.issue(uuid.uuid4(), ttl=timedelta(minutes=5))
    cut = datetime.now(UTC)
    new = issuer.issue(uuid.uuid4(), ttl=timedelta(minutes=5))

    def iat(token: str) -> float:
        claims = jwt.decode(token, key.public_key(), algorithms=["RS256"], audience="aud")
        value = claims["iat"]
        assert isinstance(value, float)
        return value

    assert revoked(iat(old), cut)
    assert not revoked(iat(new), cut)
