"""Key material: the identity signing key (JWKS for verifiers), the sealing key
notifications uses to open the set-password tokens identity sends it, and identity's
own sealing key, which opens the password hashes of registrations membership sends it.

Sealing is HPKE (RFC 9180, base mode: X25519, HKDF-SHA256, AES-128-GCM): opening a
token costs about 0.05 ms, a tenth of the RSA-OAEP it replaces, and a bulk import
opens ten thousand of them. Many tokens sealed at once (``seal_many``: a bulk
import's batch) share one HPKE-sealed data key, each token under it with AES-GCM
(envelope encryption): one HPKE operation for the batch instead of one per token,
on both sides. Sealing keys made before the change are RSA; they still seal and
open in the old format (plain base64), so a deployment keeps working with the keys
it has and moves to HPKE whenever it makes new ones.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import secrets
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jwt.algorithms import RSAAlgorithm

# A sealing key: X25519 (HPKE) for keys made now, RSA for keys made before.
SealKey = x25519.X25519PrivateKey | rsa.RSAPrivateKey

_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_HPKE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
# What a sealed value is for (HPKE's ``info``): a ciphertext made for one use never
# opens as another, even under the same key.
LINK_TOKEN = b"prodigy-users sealed link token v1"
PASSWORD_HASH = b"prodigy-users sealed password hash v1"
# Marks the HPKE format; the legacy RSA format is bare base64, which never holds a dot.
_HPKE_PREFIX = "hpke1."
# A token of a batch: ``hpke1k.<HPKE-sealed data key>.<nonce + AES-GCM ciphertext>``.
_BATCH_PREFIX = "hpke1k."
_DATA_KEY_INFO = b"prodigy-users sealed data key v1"


def _write_private(path: Path, key: rsa.RSAPrivateKey | x25519.X25519PrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def generate_keys(directory: Path) -> dict[str, Path]:
    """Create any missing key files in ``directory`` and return their paths.

    ``signing.pem`` + ``jwks.json`` (identity signs, everyone verifies) and
    ``seal.pem`` + ``seal.pub.pem`` (identity and membership seal, notifications
    opens), ``identity-seal.pem`` + ``identity-seal.pub.pem`` (membership seals the
    password hash of a registration, identity opens it), and ``links.key``,
    membership's secret for invitation and registration-link tokens.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "signing_key": directory / "signing.pem",
        "jwks": directory / "jwks.json",
        "seal_private": directory / "seal.pem",
        "seal_public": directory / "seal.pub.pem",
        "identity_seal_private": directory / "identity-seal.pem",
        "identity_seal_public": directory / "identity-seal.pub.pem",
        "links": directory / "links.key",
    }
    if not paths["links"].exists():
        paths["links"].write_bytes(secrets.token_bytes(32))
        paths["links"].chmod(0o600)
    if not paths["signing_key"].exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(paths["signing_key"], key)
        paths["jwks"].unlink(missing_ok=True)
    if not paths["jwks"].exists():
        private = load_private_key(paths["signing_key"])
        paths["jwks"].write_text(json.dumps(jwks_for(private, kid=str(uuid.uuid4()))))
    for private_name, public_name in (
        ("seal_private", "seal_public"),
        ("identity_seal_private", "identity_seal_public"),
    ):
        if not paths[private_name].exists():
            seal_key = x25519.X25519PrivateKey.generate()
            _write_private(paths[private_name], seal_key)
            paths[public_name].write_bytes(
                seal_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
    return paths


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    """Read a PEM private key."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def jwks_for(private: rsa.RSAPrivateKey, *, kid: str) -> dict[str, Any]:
    """The public half of a signing key as a JWKS document."""
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return {"keys": [jwk]}


def load_seal_key(path: Path) -> SealKey:
    """Read the PEM sealing key notifications opens tokens with (X25519, or legacy RSA)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, x25519.X25519PrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{path}: a sealing key must be X25519 or RSA, not {type(key).__name__}")
    return key


@functools.lru_cache(maxsize=8)
def _public_key(public_pem: bytes) -> x25519.X25519PublicKey | rsa.RSAPublicKey:
    # Parsed once per key: a bulk import seals thousands of tokens with the same one.
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, x25519.X25519PublicKey | rsa.RSAPublicKey):
        raise ValueError(f"a sealing key must be X25519 or RSA, not {type(key).__name__}")
    return key


def seal(public_pem: bytes, secret: str, purpose: bytes = LINK_TOKEN) -> str:
    """Encrypt a short secret so only the holder of the private key can read it.

    ``purpose`` binds it to its use (``LINK_TOKEN``, ``PASSWORD_HASH``): ``unseal``
    must be given the same one.
    """
    key = _public_key(public_pem)
    if isinstance(key, x25519.X25519PublicKey):
        sealed = _HPKE.encrypt(secret.encode(), key, info=purpose)
        return _HPKE_PREFIX + base64.b64encode(sealed).decode()
    return base64.b64encode(key.encrypt(secret.encode(), _OAEP)).decode()


def seal_many(public_pem: bytes, secrets: Sequence[str]) -> list[str]:
    """Seal several secrets at once, each still opened on its own by ``unseal``.

    One random data key is sealed with HPKE, and each secret is encrypted under it
    with AES-GCM (a fresh nonce each): the batch costs one HPKE operation, and so
    does opening all of its tokens. A legacy RSA key seals them one by one.
    """
    key = _public_key(public_pem)
    if not isinstance(key, x25519.X25519PublicKey):
        return [seal(public_pem, secret) for secret in secrets]
    data_key = AESGCM.generate_key(bit_length=128)
    wrapped = base64.b64encode(_HPKE.encrypt(data_key, key, info=_DATA_KEY_INFO)).decode()
    aead = AESGCM(data_key)
    sealed = []
    for secret in secrets:
        nonce = os.urandom(12)
        body = nonce + aead.encrypt(nonce, secret.encode(), LINK_TOKEN)
        sealed.append(f"{_BATCH_PREFIX}{wrapped}.{base64.b64encode(body).decode()}")
    return sealed


@functools.lru_cache(maxsize=64)
def _data_key(private: x25519.X25519PrivateKey, wrapped: str) -> AESGCM:
    # Opened once per batch: its tokens are sent one after another.
    try:
        data_key = _HPKE.decrypt(
            base64.b64decode(wrapped, validate=True), private, info=_DATA_KEY_INFO
        )
    except InvalidTag:
        raise ValueError("the sealed value does not open with this key") from None
    return AESGCM(data_key)


def unseal(private: SealKey, sealed: str, purpose: bytes = LINK_TOKEN) -> str:
    """Decrypt what ``seal`` or ``seal_many`` produced (ValueError if ``private``
    cannot open it, or it was sealed for another ``purpose``)."""
    if sealed.startswith(_BATCH_PREFIX):
        if not isinstance(private, x25519.X25519PrivateKey):
            raise ValueError("an HPKE-sealed value needs an X25519 sealing key")
        wrapped, _, body = sealed.removeprefix(_BATCH_PREFIX).partition(".")
        raw = base64.b64decode(body, validate=True)
        try:
            return _data_key(private, wrapped).decrypt(raw[:12], raw[12:], LINK_TOKEN).decode()
        except InvalidTag:
            raise ValueError("the sealed value does not open with this key") from None
    if sealed.startswith(_HPKE_PREFIX):
        if not isinstance(private, x25519.X25519PrivateKey):
            raise ValueError("an HPKE-sealed value needs an X25519 sealing key")
        data = base64.b64decode(sealed.removeprefix(_HPKE_PREFIX), validate=True)
        try:
            return _HPKE.decrypt(data, private, info=purpose).decode()
        except InvalidTag:
            raise ValueError("the sealed value does not open with this key") from None
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError("a legacy (RSA-OAEP) sealed value needs an RSA sealing key")
    return private.decrypt(base64.b64decode(sealed), _OAEP).decode()
