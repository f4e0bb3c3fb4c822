"""Every string of every request body of every service states its text rule in the
OpenAPI document: free text refuses control characters (``runtime.text``'s pattern),
pasted text keeps only its separators, a password is a secret, the rest is structured
(enum, uuid, date-time). A new field with none of these fails here, with its name.

The end-to-end test ``tests/e2e/test_text_input.py`` then sends every control character
to every field the documents list, over HTTP.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from prodigy_users.runtime.service import build_app
from prodigy_users.stack import SERVICES
from tests.openapi_text import StringField, body_with, string_fields


@pytest.fixture(scope="module")
def documents() -> Iterator[dict[str, dict[str, Any]]]:
    # Built from their defaults, as tests/unit/test_docs.py builds them (no network).
    with pytest.MonkeyPatch.context() as env:
        for name in os.environ:
            if name.startswith("PRODIGY_"):
                env.delenv(name)
        yield {
            name: build_app(importlib.import_module(f"prodigy_users.{name}.app").spec()).openapi()
            for name in SERVICES
        }


def fields(documents: dict[str, dict[str, Any]]) -> dict[str, list[StringField]]:
    return {name: string_fields(doc) for name, doc in documents.items()}


def test_every_request_string_states_its_rule(documents: dict[str, dict[str, Any]]) -> None:
    unruled = [
        f"{service}: {f.operation} {f.name}"
        for service, found in fields(documents).items()
        for f in found
        if f.kind == "unruled"
    ]
    assert unruled == [], (
        "free strings without a text rule (use runtime.text's Text, Name, Email, Pasted or "
        f"Secret): {unruled}"
    )


def test_the_fields_people_type_are_free_text(documents: dict[str, dict[str, Any]]) -> None:
    kinds = {
        (service, f.operation, f.name): f.kind
        for service, found in fields(documents).items()
        for f in found
    }
    for operation in ("add_member", "create_group", "rename_group", "create_department"):
        assert kinds["membership", operation, "name"] == "text", operation
    assert kinds["membership", "add_member", "email"] == "text"
    assert kinds["membership", "update_member", "employee_id"] == "text"
    assert kinds["membership", "update_member", "name"] == "text"
    assert kinds["identity", "update_me", "name"] == "text"
    assert kinds["identity", "request_email_change", "email"] == "text"
    assert kinds["identity", "request_email_change", "password"] == "secret"
    assert kinds["identity", "confirm_email_change", "token"] == "text"
    assert kinds["membership", "create_department", "admin.name"] == "text"
    assert kinds["membership", "create_department", "admin.email"] == "text"
    assert kinds["membership", "rotate_registration_link", "allowed_domains.0"] == "text"
    assert kinds["membership", "invite", "emails"] == "pasted"
    assert kinds["membership", "invite", "emails.0"] == "pasted"
    for operation in ("accept_invitation", "join"):
        assert kinds["membership", operation, "name"] == "text"
        assert kinds["membership", operation, "email"] == "text"
        assert kinds["membership", operation, "password"] == "secret"
    assert kinds["identity", "issue_token", "email"] == "text"
    assert kinds["identity", "issue_token", "password"] == "secret"
    assert kinds["identity", "set_password", "token"] == "text"
    assert kinds["identity", "request_password_reset", "email"] == "text"


def test_bodies_can_be_built_around_each_field(documents: dict[str, dict[str, Any]]) -> None:
    # The end-to-end test relies on this: each body holds the value where the field is.
    document = documents["membership"]
    create = document["paths"]["/v1/departments"]["post"]
    body = body_with(document, create, ("admin", "email"), "X")
    assert body["admin"]["email"] == "X" and body["name"]
    link = document["paths"]["/v1/departments/{dept}/registration-link"]["post"]
    assert body_with(document, link, ("allowed_domains", "0"), "X")["allowed_domains"] == ["X"]
    invite = document["paths"]["/v1/departments/{dept}/invitations"]["post"]
    assert body_with(document, invite, ("emails",), "X")["emails"] == "X"
    assert body_with(document, invite, ("emails", "0"), "X")["emails"] == ["X"]
