"""Keyset cursors, shared by the users table and the activity log. No I/O.

A cursor is opaque to clients: base64url of the last row's sort key, the order it
belongs to and a fingerprint of the view (department and filters), so a cursor is
refused by any other order or filter instead of silently skipping rows. Extra
values (the users table's total) ride along under keys of their own.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from .errors import InvalidCursor

# What each value of a sort key is, so a cursor's keys can be checked and typed again.
KeyKind = Literal["text", "int", "bool", "time", "uuid"]


def _key_to_json(kind: KeyKind, value: Any) -> Any:
    if kind == "time":
        assert isinstance(value, datetime)
        return value.isoformat()
    if kind == "uuid":
        return str(value)
    return value


def _key_from_json(kind: KeyKind, value: Any) -> Any:
    # bool is an int in Python: check it first, both ways.
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "uuid" and isinstance(value, str):
        return uuid.UUID(value)
    if kind == "time" and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has a time zone")
        return moment
    raise ValueError(f"not a {kind}")


def encode_cursor(
    order: str,
    fingerprint: str,
    kinds: Sequence[KeyKind],
    keys: Sequence[Any],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The cursor that resumes the view (``order``, ``fingerprint``) after the row whose
    sort key is ``keys`` (one value per kind); ``extra`` rides along (keys other than
    ``s``, ``v`` and ``k``)."""
    assert len(keys) == len(kinds), "a key value per kind"
    doc: dict[str, Any] = {
        **(extra or {}),
        "s": order,
        "v": fingerprint,
        "k": [_key_to_json(kind, value) for kind, value in zip(kinds, keys, strict=True)],
    }
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_document(value: str) -> dict[str, Any]:
    """A cursor's JSON document; ``ValueError`` if it is not one."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("not a cursor") from exc
    if not isinstance(doc, dict):
        raise ValueError("not a cursor")
    return doc


def decode_cursor(
    value: str, order: str, fingerprint: str, kinds: Sequence[KeyKind]
) -> tuple[Any, ...]:
    """The sort key a cursor resumes after; ``InvalidCursor`` unless it was issued for
    exactly this view (same order and fingerprint)."""
    try:
        doc = cursor_document(value)
        sort, issued_for, keys = doc["s"], doc["v"], doc["k"]
    except (ValueError, KeyError) as exc:
        raise InvalidCursor("the cursor is malformed") from exc
    if sort != order or issued_for != fingerprint:
        raise InvalidCursor("the cursor belongs to another sort or filter; start again without it")
    if not isinstance(keys, list) or len(keys) != len(kinds):
        raise InvalidCursor("the cursor is malformed")
    try:
        return tuple(_key_from_json(kind, v) for kind, v in zip(kinds, keys, strict=True))
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("the cursor is malformed") from exc
