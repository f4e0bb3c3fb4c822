"""``prodigy-users create-department`` against stand-in membership and identity APIs
(the real ones are exercised end to end in tests/e2e)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from prodigy_users.runtime.auth import OPERATOR_SUBJECT, TokenVerifier
from prodigy_users.runtime.keys import generate_keys
from prodigy_users.stack import cli
from prodigy_users.stack.departments import (
    Endpoints,
    OperatorError,
    create_department,
    operator_token,
    signing_key_path,
)
from prodigy_users.stack.supervisor import free_ports

DEPT = str(uuid.uuid4())
ADMIN = str(uuid.uuid4())
ENDPOINTS = Endpoints(membership="http://membership.test", identity="http://identity.test")


class FakeServices:
    """Membership and identity as the contract describes them, recording every call."""

    def __init__(self, data_dir: Path, *, answer_202: bool = False, weak: bool = False) -> None:
        self.verifier = TokenVerifier.from_file(
            data_dir / "keys" / "jwks.json",
            issuer="prodigy-users/identity",
            audience="prodigy-users",
        )
        self.answer_202 = answer_202
        self.weak = weak
        self.polls = 0
        self.calls: list[tuple[str, str, Any]] = []

    def _operator(self, request: httpx.Request) -> None:
        token = request.headers["authorization"].removeprefix("Bearer ")
        principal = self.verifier.verify(token)
        assert principal.is_operator and principal.account_id == OPERATOR_SUBJECT

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, str(request.url), body))
        path = request.url.path
        if path == "/v1/departments":
            self._operator(request)
            if self.answer_202:
                return httpx.Response(
                    202, json={"department_id": DEPT, "operation_url": "/v1/operations/op1"}
                )
            return httpx.Response(201, json={"department_id": DEPT, "admin_account_id": ADMIN})
        if path == "/v1/operations/op1":
            self._operator(request)
            self.polls += 1
            if self.polls < 3:
                return httpx.Response(200, json={"status": "pending"})
            return httpx.Response(
                200, json={"status": "succeeded", "result": {"account_id": ADMIN}}
            )
        if path == f"/v1/accounts/{ADMIN}/password-link":
            self._operator(request)
            return httpx.Response(
                201,
                json={"url": "http://identity.test/set-password?token=t0k", "token": "t0k"},
            )
        if path == "/v1/password/set":
            assert "authorization" not in request.headers
            if self.weak:
                return httpx.Response(
                    422,
                    json={
                        "type": "https://prodigy-users.dev/problems/weak-password",
                        "title": "Password too weak",
                        "status": 422,
                        "detail": "Choose a stronger password.",
                        "errors": [{"field": "password", "message": "At least 10 characters."}],
                    },
                )
            return httpx.Response(204)
        return httpx.Response(404, json={"title": "Not Found", "status": 404, "detail": path})


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    generate_keys(tmp_path / "keys")
    return tmp_path


def run(fake: FakeServices, data_dir: Path, password: str | None = None) -> dict[str, str]:
    token = operator_token(signing_key_path(None, data_dir), data_dir)
    with httpx.Client(transport=httpx.MockTransport(fake)) as client:
        return create_department(
            client,
            ENDPOINTS,
            token,
            name="Station 1",
            admin_email="chief@example.org",
            admin_name="Pat Chief",
            admin_password=password,
        )


def test_created_at_once_gives_a_set_password_link(data_dir: Path) -> None:
    fake = FakeServices(data_dir)
    out = run(fake, data_dir)
    assert out == {
        "department_id": DEPT,
        "admin_account_id": ADMIN,
        "set_password_url": "http://identity.test/set-password?token=t0k",
    }
    method, url, body = fake.calls[0]
    assert (method, url) == ("POST", "http://membership.test/v1/departments")
    assert body == {
        "name": "Station 1",
        "admin": {"name": "Pat Chief", "email": "chief@example.org"},
    }


def test_accepted_operation_is_polled_and_a_password_set(data_dir: Path) -> None:
    fake = FakeServices(data_dir, answer_202=True)
    out = run(fake, data_dir, password="a long enough passphrase")
    assert out == {"department_id": DEPT, "admin_account_id": ADMIN}
    assert fake.polls == 3
    assert fake.calls[-1] == (
        "POST",
        "http://identity.test/v1/password/set",
        {"token": "t0k", "password": "a long enough passphrase"},
    )


def test_a_weak_password_is_reported_with_its_reasons(data_dir: Path) -> None:
    with pytest.raises(OperatorError) as caught:
        run(FakeServices(data_dir, weak=True), data_dir, password="short")
    message = str(caught.value)
    assert "identity answered 422: Password too weak" in message
    assert "password: At least 10 characters." in message
    assert DEPT in message  # what was created already is said


def test_the_command_line_fails_in_one_line_when_nothing_listens(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = free_ports(1)[0]
    code = cli.main(
        [
            "create-department",
            "--name",
            "S",
            "--admin-email",
            "a@example.org",
            "--admin-name",
            "A",
            "--data-dir",
            str(data_dir),
            "--membership-url",
            f"http://127.0.0.1:{closed}",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1
    assert f"cannot reach membership at http://127.0.0.1:{closed}" in err


def test_a_missing_key_is_explained(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match=r"signing key .* not found"):
        operator_token(signing_key_path(None, tmp_path), tmp_path)


def test_every_subcommand_has_help() -> None:
    parser = cli.parser()
    for name in cli.SUBCOMMANDS:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"])
        assert done.value.code == 0
