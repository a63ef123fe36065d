"""The Ed25519 key authz signs access tokens with, and its public JWKS."""

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from alta_authz.settings import Settings


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    kid: str
    public_jwk: dict[str, Any]

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> "SigningKey":
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
        # RFC 7638 thumbprint: the same key always gets the same kid, on every replica.
        thumbprint = hashlib.sha256(
            json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
        ).digest()
        kid = _b64url(thumbprint)[:16]
        return cls(private_key, kid, {**members, "kid": kid, "alg": "EdDSA", "use": "sig"})

    @classmethod
    def from_pem(cls, pem: bytes) -> "SigningKey":
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the JWT signing key must be an Ed25519 private key")
        return cls.from_private_key(key)


def load_signing_key(settings: Settings) -> SigningKey:
    if settings.jwt_private_key is not None:
        return SigningKey.from_pem(settings.jwt_private_key.get_secret_value().encode())
    if settings.jwt_private_key_file is not None:
        return SigningKey.from_pem(settings.jwt_private_key_file.read_bytes())
    return SigningKey.from_private_key(Ed25519PrivateKey.generate())
