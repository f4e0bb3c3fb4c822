"""Key material: the identity signing key (JWKS for verifiers) and the sealing key
notifications uses to open the set-password tokens identity sends it."""

from __future__ import annotations

import base64
import functools
import json
import secrets
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _write_private(path: Path, key: rsa.RSAPrivateKey) -> None:
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
    opens), and ``links.key``, membership's secret for invitation and
    registration-link tokens.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "signing_key": directory / "signing.pem",
        "jwks": directory / "jwks.json",
        "seal_private": directory / "seal.pem",
        "seal_public": directory / "seal.pub.pem",
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
    if not paths["seal_private"].exists():
        seal = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(paths["seal_private"], seal)
        paths["seal_public"].write_bytes(
            seal.public_key().public_bytes(
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


@functools.lru_cache(maxsize=8)
def _public_key(public_pem: bytes) -> rsa.RSAPublicKey:
    # Parsed once per key: a bulk import seals thousands of tokens with the same one.
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def seal(public_pem: bytes, secret: str) -> str:
    """Encrypt a short secret so only the holder of the private key can read it."""
    return base64.b64encode(_public_key(public_pem).encrypt(secret.encode(), _OAEP)).decode()


def unseal(private: rsa.RSAPrivateKey, sealed: str) -> str:
    """Decrypt what ``seal`` produced."""
    return private.decrypt(base64.b64decode(sealed), _OAEP).decode()
