"""Membership's POSTs that create something take Idempotency-Key; the others do not."""

from __future__ import annotations

import pytest

from prodigy_users.membership.app import IDEMPOTENT, spec
from prodigy_users.runtime.idempotency import idempotent_paths
from prodigy_users.runtime.service import build_app


def test_membership_names_its_creating_posts_and_only_those() -> None:
    app = build_app(spec())
    patterns = idempotent_paths(app, IDEMPOTENT)
    assert len(patterns) == 5
    dept = "9e2dde1a-b97d-432e-888c-816f8803334d"
    for path in (
        "/v1/departments",
        f"/v1/departments/{dept}/members",
        f"/v1/departments/{dept}/invitations",
        f"/v1/departments/{dept}/groups",
        f"/v1/departments/{dept}/imports",
    ):
        assert any(p.match(path) for p in patterns), path
    for path in (
        "/v1/invitations/tok/accept",
        "/v1/join/tok",
        f"/v1/departments/{dept}/registration-link",
        f"/v1/departments/{dept}/members/{dept}/password-reset",
    ):
        assert not any(p.match(path) for p in patterns), path
    # The header is documented on those operations.
    document = app.openapi()
    post = document["paths"]["/v1/departments/{dept}/members"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"]]
    accept = document["paths"]["/v1/invitations/{token}/accept"]["post"]
    assert "Idempotency-Key" not in [p["name"] for p in accept.get("parameters", [])]


def test_an_unknown_operation_is_a_mistake_said_at_once() -> None:
    with pytest.raises(LookupError, match="add_membr"):
        idempotent_paths(build_app(spec()), frozenset({"add_membr"}))
