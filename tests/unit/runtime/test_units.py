"""Fast tests of the runtime's pure pieces: problems, tokens, keys, topic creation requests."""

from __future__ import annotations

import base64
import json
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.requests import Request

from prodigy_users.contracts.topics import DAY_MS, MEMBERSHIP_EVENTS, TOPICS
from prodigy_users.runtime import problems
from prodigy_users.runtime.auth import (
    OPERATOR_SCOPE,
    Principal,
    TokenIssuer,
    TokenVerifier,
    bearer_token,
)
from prodigy_users.runtime.errors import Unauthenticated
from prodigy_users.runtime.kafka_admin import new_topics
from prodigy_users.runtime.keys import (
    PASSWORD_HASH,
    generate_keys,
    jwks_for,
    load_private_key,
    load_seal_key,
    seal,
    seal_many,
    unseal,
)
from prodigy_users.runtime.problems import PROBLEM_BASE, Problem, field_errors, problem_of

ISSUER = "prodigy-users/identity"
AUDIENCE = "prodigy-users"

# --- problems ---------------------------------------------------------------------------------


def test_field_errors_drop_the_location_prefix() -> None:
    errors = [
        {"loc": ("body", "email"), "msg": "value is not a valid email address", "type": "x"},
        {"loc": ("body", "rows", 3, "role"), "msg": "Input should be 'admin'", "type": "x"},
        {"loc": ("query", "limit"), "msg": "too big", "type": "x"},
        {"loc": ("path", "dept"), "msg": "not a uuid", "type": "x"},
    ]
    assert field_errors(errors) == [
        {"field": "email", "message": "value is not a valid email address"},
        {"field": "rows.3.role", "message": "Input should be 'admin'"},
        {"field": "limit", "message": "too big"},
        {"field": "dept", "message": "not a uuid"},
    ]


def test_field_errors_on_the_whole_body() -> None:
    assert field_errors([{"loc": ("body",), "msg": "Field required"}]) == [
        {"field": "(body)", "message": "Field required"}
    ]
    assert field_errors([{"msg": "odd"}]) == [{"field": "(body)", "message": "odd"}]


def test_problem_body_is_rfc9457() -> None:
    problem = Problem(409, "account-exists", "Account exists", "Invite them instead.")
    assert problem.body() == {
        "type": PROBLEM_BASE + "account-exists",
        "title": "Account exists",
        "status": 409,
        "detail": "Invite them instead.",
    }
    assert str(problem) == "Invite them instead."


def test_problem_body_with_instance_errors_and_extra() -> None:
    problem = Problem(
        422,
        "validation",
        "Invalid request",
        "See `errors`.",
        errors=[{"field": "email", "message": "bad"}],
        extra={"account_id": "a1"},
    )
    body = problem.body("/v1/departments/x/members")
    assert body["instance"] == "/v1/departments/x/members"
    assert body["errors"] == [{"field": "email", "message": "bad"}]
    assert body["account_id"] == "a1"
    assert body["type"].endswith("/validation")


class _MemberCreate(BaseModel):
    email: str = Field(min_length=3)
    role: str


def _problem_app() -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.post("/members")
    async def create(body: _MemberCreate) -> dict[str, str]:
        raise Problem(409, "account-exists", "Account exists", "Invite them instead.")

    return app


async def test_installed_handlers_answer_problem_json() -> None:
    transport = httpx.ASGITransport(app=_problem_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await _check_problem_answers(client)


async def _check_problem_answers(client: httpx.AsyncClient) -> None:
    conflict = await client.post("/members", json={"email": "ana@x.org", "role": "member"})
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == problems.MEDIA_TYPE
    assert conflict.json()["instance"] == "/members"

    invalid = await client.post("/members", json={"email": "a"})
    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["errors"]} == {"email", "role"}

    malformed = await client.post(
        "/members", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["type"].endswith("/malformed-json")

    missing = await client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["status"] == 404


# --- access tokens ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    generate_keys(directory)
    return directory


@pytest.fixture(scope="module")
def signing_key(key_dir: Path) -> rsa.RSAPrivateKey:
    return load_private_key(key_dir / "signing.pem")


@pytest.fixture(scope="module")
def jwks(key_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((key_dir / "jwks.json").read_text())
    return document


@pytest.fixture(scope="module")
def kid(jwks: dict[str, Any]) -> str:
    return str(jwks["keys"][0]["kid"])


@pytest.fixture(scope="module")
def verifier(jwks: dict[str, Any]) -> TokenVerifier:
    return TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE)


def _issuer(
    key: rsa.RSAPrivateKey, kid: str, *, issuer: str = ISSUER, audience: str = AUDIENCE
) -> TokenIssuer:
    return TokenIssuer(key, kid=kid, issuer=issuer, audience=audience)


def _assert_unauthorized(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token)
    problem = problem_of(caught.value, {})
    assert problem.status == 401
    assert problem.headers == {"WWW-Authenticate": "Bearer"}
    assert problem.body()["type"] == PROBLEM_BASE + "unauthorized"


def test_a_valid_token_gives_its_principal(
    signing_key: rsa.RSAPrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    account = uuid.uuid4()
    before = datetime.now(UTC).timestamp()
    token = _issuer(signing_key, kid).issue(account, ttl=timedelta(minutes=5))
    after = datetime.now(UTC).timestamp()
    principal = verifier.verify(token)
    assert principal.issued_at is not None
    # ``iat`` keeps its microseconds (revocation compares within the second).
    assert before <= principal.issued_at <= after
    assert principal == Principal(
        account_id=account, scopes=frozenset(), issued_at=principal.issued_at
    )
    assert not principal.is_operator
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == ("RS256", kid)


def test_operator_scope(signing_key: rsa.RSAPrivateKey, kid: str, verifier: TokenVerifier) -> None:
    token = _issuer(signing_key, kid).issue(
        uuid.uuid4(), ttl=timedelta(minutes=5), scopes=(OPERATOR_SCOPE, "other")
    )
    principal = verifier.verify(token)
    assert principal.is_operator
    assert principal.scopes == {OPERATOR_SCOPE, "other"}


def test_an_expired_token_is_401(
    signing_key: rsa.RSAPrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _issuer(signing_key, kid).issue(uuid.uuid4(), ttl=timedelta(seconds=-30))
    _assert_unauthorized(verifier, token)


def test_a_tampered_signature_is_401(
    signing_key: rsa.RSAPrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _issuer(signing_key, kid).issue(uuid.uuid4(), ttl=timedelta(minutes=5))
    head, body, signature = token.split(".")
    # Change a character in the middle: the last one may only carry padding bits.
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    tampered = f"{head}.{body}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
    _assert_unauthorized(verifier, tampered)


def test_a_tampered_payload_is_401(
    signing_key: rsa.RSAPrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _issuer(signing_key, kid).issue(uuid.uuid4(), ttl=timedelta(minutes=5))
    head, _body, signature = token.split(".")
    other = _issuer(signing_key, kid).issue(uuid.uuid4(), ttl=timedelta(minutes=5))
    _assert_unauthorized(verifier, f"{head}.{other.split('.')[1]}.{signature}")


def test_a_wrong_audience_is_401(
    signing_key: rsa.RSAPrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _issuer(signing_key, kid, audience="someone-else").issue(
        uuid.uuid4(), ttl=timedelta(minutes=5)
    )
    _assert_unauthorized(verifier, token)


def test_a_wrong_issuer_is_401(
    signing_key: rsa.RSAPrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _issuer(signing_key, kid, issuer="evil").issue(uuid.uuid4(), ttl=timedelta(minutes=5))
    _assert_unauthorized(verifier, token)


def test_an_unknown_kid_is_401(signing_key: rsa.RSAPrivateKey, verifier: TokenVerifier) -> None:
    token = _issuer(signing_key, "not-a-known-kid").issue(uuid.uuid4(), ttl=timedelta(minutes=5))
    _assert_unauthorized(verifier, token)


def test_another_key_under_a_known_kid_is_401(kid: str, verifier: TokenVerifier) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = _issuer(stranger, kid).issue(uuid.uuid4(), ttl=timedelta(minutes=5))
    _assert_unauthorized(verifier, token)


def test_garbage_is_401(verifier: TokenVerifier) -> None:
    _assert_unauthorized(verifier, "not.a.token")
    _assert_unauthorized(verifier, "")


def test_a_non_uuid_subject_is_401(
    signing_key: rsa.RSAPrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = jwt.encode(
        {"sub": "root", "iss": ISSUER, "aud": AUDIENCE, "exp": 4102444800},
        signing_key,
        algorithm="RS256",
        headers={"kid": kid},
    )
    _assert_unauthorized(verifier, token)


def test_verifier_from_file(key_dir: Path, signing_key: rsa.RSAPrivateKey, kid: str) -> None:
    verifier = TokenVerifier.from_file(key_dir / "jwks.json", issuer=ISSUER, audience=AUDIENCE)
    account = uuid.uuid4()
    token = _issuer(signing_key, kid).issue(account, ttl=timedelta(minutes=1))
    assert verifier.verify(token).account_id == account


def _request(authorization: str | None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer   abc ", "abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer ", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, expected: str | None) -> None:
    assert bearer_token(_request(header)) == expected


# --- keys -------------------------------------------------------------------------------------


def test_seal_unseal_round_trip(key_dir: Path) -> None:
    secret = "single-use-token-" + uuid.uuid4().hex
    sealed = seal((key_dir / "seal.pub.pem").read_bytes(), secret)
    assert sealed.startswith("hpke1."), "new keys seal with HPKE"
    assert secret not in sealed
    assert unseal(load_seal_key(key_dir / "seal.pem"), sealed) == secret
    # HPKE is randomised: the same secret never seals to the same text twice.
    assert seal((key_dir / "seal.pub.pem").read_bytes(), secret) != sealed


def test_unseal_with_the_wrong_key_fails(key_dir: Path, tmp_path: Path) -> None:
    sealed = seal((key_dir / "seal.pub.pem").read_bytes(), "secret")
    other = generate_keys(tmp_path / "other")
    with pytest.raises(ValueError):
        unseal(load_seal_key(other["seal_private"]), sealed)


def test_a_value_sealed_for_one_purpose_does_not_open_as_another(key_dir: Path) -> None:
    public = (key_dir / "identity-seal.pub.pem").read_bytes()
    private = load_seal_key(key_dir / "identity-seal.pem")
    hashed = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
    sealed = seal(public, hashed, PASSWORD_HASH)
    assert unseal(private, sealed, PASSWORD_HASH) == hashed
    with pytest.raises(ValueError):
        unseal(private, sealed)  # as a link token
    with pytest.raises(ValueError):
        unseal(private, seal(public, hashed), PASSWORD_HASH)


def test_a_tampered_sealed_value_does_not_open(key_dir: Path) -> None:
    sealed = seal((key_dir / "seal.pub.pem").read_bytes(), "secret")
    body = bytearray(base64.b64decode(sealed.removeprefix("hpke1.")))
    body[-1] ^= 1  # the AEAD tag
    with pytest.raises(ValueError):
        unseal(
            load_seal_key(key_dir / "seal.pem"),
            "hpke1." + base64.b64encode(bytes(body)).decode(),
        )


def test_seal_many_gives_tokens_that_each_open_alone(key_dir: Path, tmp_path: Path) -> None:
    secrets = [f"token-{i}-{uuid.uuid4().hex}" for i in range(5)]
    sealed = seal_many((key_dir / "seal.pub.pem").read_bytes(), secrets)
    assert len(set(sealed)) == 5 and all(s.startswith("hpke1k.") for s in sealed)
    assert not any(secret in s for secret, s in zip(secrets, sealed, strict=True))
    key = load_seal_key(key_dir / "seal.pem")
    assert [unseal(key, s) for s in reversed(sealed)] == list(reversed(secrets))
    with pytest.raises(ValueError):  # another key opens none of them
        unseal(load_seal_key(generate_keys(tmp_path / "other")["seal_private"]), sealed[0])


def test_a_batch_token_does_not_open_once_tampered_with(key_dir: Path) -> None:
    first, second = (
        seal_many((key_dir / "seal.pub.pem").read_bytes(), ["a-secret", "b-secret"])
        for _ in range(2)
    )
    key = load_seal_key(key_dir / "seal.pem")
    wrapped, _, body = first[0].removeprefix("hpke1k.").partition(".")
    other_wrapped = second[0].removeprefix("hpke1k.").partition(".")[0]
    with pytest.raises(ValueError):  # a token moved under another batch's data key
        unseal(key, f"hpke1k.{other_wrapped}.{body}")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(ValueError):
        unseal(key, f"hpke1k.{wrapped}.{base64.b64encode(bytes(raw)).decode()}")


def test_legacy_rsa_seal_keys_still_seal_and_open(tmp_path: Path) -> None:
    """Deployments whose sealing key predates HPKE keep working with it."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "seal.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    generate_keys(tmp_path / "new")
    sealed = seal(pem, "legacy-secret")
    assert not sealed.startswith("hpke1.")
    key = load_seal_key(tmp_path / "seal.pem")
    assert unseal(key, sealed) == "legacy-secret"
    assert [unseal(key, s) for s in seal_many(pem, ["one", "two"])] == ["one", "two"]
    # A key of one kind never opens the other kind's format.
    with pytest.raises(ValueError):
        unseal(key, seal((tmp_path / "new" / "seal.pub.pem").read_bytes(), "x"))


def test_a_key_of_another_kind_is_no_sealing_key(tmp_path: Path) -> None:
    (tmp_path / "ec.pem").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="X25519 or RSA"):
        load_seal_key(tmp_path / "ec.pem")


def test_generate_keys_creates_everything_private_keys_owner_only(tmp_path: Path) -> None:
    paths = generate_keys(tmp_path / "new")
    assert {p.name for p in paths.values()} == {
        "signing.pem",
        "jwks.json",
        "seal.pem",
        "seal.pub.pem",
        "identity-seal.pem",
        "identity-seal.pub.pem",
        "links.key",
    }
    assert len(paths["links"].read_bytes()) == 32
    for name in ("signing_key", "seal_private", "identity_seal_private", "links"):
        assert stat.S_IMODE(paths[name].stat().st_mode) == 0o600
    # Two sealing pairs, not one key twice: notifications' key cannot open identity's.
    assert paths["seal_public"].read_bytes() != paths["identity_seal_public"].read_bytes()
    jwk = json.loads(paths["jwks"].read_text())["keys"][0]
    assert (jwk["use"], jwk["alg"], jwk["kty"]) == ("sig", "RS256", "RSA")
    assert "d" not in jwk  # the public half only


def test_generate_keys_is_idempotent(tmp_path: Path) -> None:
    first = generate_keys(tmp_path)
    before = {name: path.read_bytes() for name, path in first.items()}
    second = generate_keys(tmp_path)
    assert second == first
    assert {name: path.read_bytes() for name, path in second.items()} == before


def test_generate_keys_rebuilds_a_lost_jwks_from_the_same_key(tmp_path: Path) -> None:
    paths = generate_keys(tmp_path)
    modulus = json.loads(paths["jwks"].read_text())["keys"][0]["n"]
    paths["jwks"].unlink()
    generate_keys(tmp_path)
    assert json.loads(paths["jwks"].read_text())["keys"][0]["n"] == modulus


def test_a_new_signing_key_gets_a_new_jwks(tmp_path: Path) -> None:
    paths = generate_keys(tmp_path)
    old = json.loads(paths["jwks"].read_text())["keys"][0]
    paths["signing_key"].unlink()
    generate_keys(tmp_path)
    new = json.loads(paths["jwks"].read_text())["keys"][0]
    assert (new["n"], new["kid"]) != (old["n"], old["kid"])


def test_jwks_for_verifies_what_the_key_signs(signing_key: rsa.RSAPrivateKey) -> None:
    document = jwks_for(signing_key, kid="k1")
    verifier = TokenVerifier(document, issuer=ISSUER, audience=AUDIENCE)
    account = uuid.uuid4()
    token = _issuer(signing_key, "k1").issue(account, ttl=timedelta(minutes=1))
    assert verifier.verify(token).account_id == account


# --- kafka_admin.new_topics ------------------------------------------------------------------


def test_new_topics_has_each_topic_and_its_dlq() -> None:
    requests = new_topics(TOPICS)
    names = [r.name for r in requests]
    assert len(names) == len(set(names)) == 2 * len(TOPICS)
    for topic in TOPICS:
        assert topic.name in names
        assert f"{topic.name}.dlq" in names


def test_new_topics_configs() -> None:
    main, dlq = new_topics([MEMBERSHIP_EVENTS], replication=3)
    assert (main.name, main.num_partitions, main.replication_factor) == (
        "membership.events.v1",
        MEMBERSHIP_EVENTS.partitions,
        3,
    )
    assert main.topic_configs == {"cleanup.policy": "delete", "retention.ms": "-1"}
    assert (dlq.name, dlq.num_partitions, dlq.replication_factor) == (
        "membership.events.v1.dlq",
        1,
        3,
    )
    assert dlq.topic_configs == {"retention.ms": str(30 * DAY_MS)}


def test_new_topics_of_nothing() -> None:
    assert new_topics([]) == []


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [
        ("25006", True),  # a connection left in a read-only transaction
        ("25P02", True),  # in a failed transaction
        ("40P01", True),  # deadlock
        ("40001", True),  # serialization failure
        ("08006", True),  # connection failure
        ("57P01", True),  # admin shutdown
        ("23505", False),  # unique violation: about the message
        ("22001", False),  # value too long: about the message
        ("42P01", False),  # undefined table: a bug, not a moment
    ],
)
def test_database_errors_about_the_moment_are_retried_not_dead_lettered(
    sqlstate: str, transient: bool
) -> None:
    from sqlalchemy.exc import DBAPIError

    from prodigy_users.runtime.consumer import is_transient

    error = DBAPIError("INSERT ...", {}, _PgError(sqlstate))
    assert is_transient(error) is transient


def test_handler_bugs_are_not_transient() -> None:
    from prodigy_users.runtime.consumer import is_transient

    assert not is_transient(ValueError("a bad message"))
    assert is_transient(ConnectionRefusedError())
