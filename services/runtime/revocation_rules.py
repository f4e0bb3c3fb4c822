"""When an access token has been revoked: its ``iat`` is before its account's cut-off.

Identity writes ``iat`` with microseconds (RFC 7519 allows a non-integer NumericDate),
so a token issued in the same second as the cut-off but after it is still accepted,
and one issued before it is not. A token with an integer ``iat`` (issued before that
change) counts from the start of its second: if the cut-off falls in that same
second, it is refused (we cannot tell, and refusing is the safe side).
"""

from __future__ import annotations

from datetime import datetime


def revoked(issued_at: float | None, not_before: datetime | None) -> bool:
    """True if a token issued at ``issued_at`` (seconds since the epoch) is no longer
    accepted under the cut-off ``not_before`` (``None``: the account has none)."""
    if not_before is None:
        return False
    if issued_at is None:
        return True  # no ``iat``: nothing says it is newer than the cut-off
    return issued_at < not_before.timestamp()
