"""The email address type of every event: pydantic's ``EmailStr`` rules, each address
checked once per process.

A person's address travels in several events (account created, member added,
set-password link, ...) and every service validates each event it reads. Checking an
address with email-validator costs about 0.1 ms: a 10,000-person import would pay it
tens of thousands of times for the same addresses. The rules and the error message
are ``EmailStr``'s (email-validator without DNS, surrounding spaces dropped, the
normalized form kept); a repeat is a dictionary lookup.
"""

from __future__ import annotations

import functools
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

# Enough for the addresses of the largest import (50,000 rows) in flight at once
# in one process without its repeats falling out; about 10 MB at most.
_REMEMBERED = 65_536


@functools.lru_cache(maxsize=_REMEMBERED)
def normalized_email(value: str) -> str:
    """``value``'s normalized form (email-validator, no DNS lookup).

    Raises ``EmailNotValidError`` with the reason if it is not an address.
    """
    return validate_email(value, check_deliverability=False).normalized


def _valid(value: str) -> str:
    try:
        return normalized_email(value.strip())
    except EmailNotValidError as exc:
        raise PydanticCustomError(
            "value_error", "value is not a valid email address: {reason}", {"reason": str(exc)}
        ) from None


Email = Annotated[
    str, AfterValidator(_valid), WithJsonSchema({"type": "string", "format": "email"})
]
"""An email address, validated and normalized as ``EmailStr`` does."""
