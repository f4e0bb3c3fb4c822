"""The email address type of every event, and how strictly it is checked.

Where an address enters the system (an admin's form, an uploaded file) it is checked
in full, as pydantic's ``EmailStr`` checks it: email-validator without DNS lookups,
surrounding spaces dropped, the normalized form kept. An event built with an address
is checked that way too.

A service *reading* an event (validation context ``READING``, which the runtime's
consumer passes) checks the address's shape only: one ``@`` with something on each
side, no spaces or control characters, at most 254 characters. The service that
took the address in has checked it in full already; a consumer checking it again
with its own email-validator (another version, other rules) could dead-letter a good
event, and a bulk upload would pay the ~0.1 ms check tens of thousands of times in
every service. Garbage still fails, and goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

# The validation context under which consumers read events (see the module's doc).
READING: dict[str, Any] = {"reading": True}

MAX_LENGTH = 254  # RFC 5321's limit on a forward path, less its angle brackets
_SHAPE = re.compile(r"[^\s@\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+")


def validated_email(value: str) -> str:
    """``value`` checked in full as an address, in its normalized form (email-validator,
    no DNS lookup).

    Raises ``EmailNotValidError`` with the reason if it is not an address.
    """
    return validate_email(value, check_deliverability=False).normalized


def email_key(email: str) -> str:
    """The form under which two addresses are the same account: trimmed, lower-cased.

    Lower-casing the local part too is deliberate: people type their address with
    varying case, and two accounts differing only by case are always a mistake.
    Identity's one-account-per-email index and every lookup by address use it.
    """
    return email.strip().lower()


def _invalid(reason: str) -> PydanticCustomError:
    return PydanticCustomError(
        "value_error", "value is not a valid email address: {reason}", {"reason": reason}
    )


def _valid(value: str, info: ValidationInfo) -> str:
    if isinstance(info.context, dict) and info.context.get("reading"):
        if len(value) > MAX_LENGTH or _SHAPE.fullmatch(value) is None:
            raise _invalid("not of the form local-part@domain")
        return value
    try:
        return validated_email(value.strip())
    except EmailNotValidError as exc:
        raise _invalid(str(exc)) from None


Email = Annotated[
    str, AfterValidator(_valid), WithJsonSchema({"type": "string", "format": "email"})
]
"""An email address: checked in full when built, for its shape when read."""
