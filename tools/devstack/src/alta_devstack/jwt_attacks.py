"""The JWT attack set every protected endpoint is tested with (services: 401, BFF: /login).

`jwt_attacks(key, kid=..., issuer=..., audience=...)` returns forged or broken tokens by name,
built around the real signing key so that each one differs from a valid token in one way only.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ATTACKS = (
    "no exp",
    "no iat",
    "no sub",
    "expired",
    "iat far in the future",
    "alg none",
    "other algorithm",
    "HS256 signed with the public key",
    "wrong audience",
    "wrong issuer",
    "unknown kid",
    "other key with a known kid",
    "tampered payload",
    "garbage",
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _part(data: dict[str, Any]) -> str:
    return _b64(json.dumps(data).encode())


def jwt_attacks(
    key: Ed25519PrivateKey,
    *,
    kid: str,
    issuer: str,
    audience: str,
    subject: str | None = None,
    roles: tuple[str, ...] = ("user",),
) -> dict[str, str]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject or str(uuid.uuid4()),
        "roles": list(roles),
        "iat": now,
        "exp": now + 600,
    }

    def signed(
        signing_key: Any = key, algorithm: str = "EdDSA", key_id: str = kid, **claims: Any
    ) -> str:
        payload = {k: v for k, v in {**base, **claims}.items() if v is not None}
        return jwt.encode(payload, signing_key, algorithm=algorithm, headers={"kid": key_id})

    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header, payload, signature = signed().split(".")
    # PyJWT refuses to HMAC-sign with a PEM public key, so the key confusion is built by hand.
    confused_input = f"{_part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{payload}"
    confused_mac = hmac.new(public_pem, confused_input.encode(), hashlib.sha256).digest()
    escalated = {**base, "roles": ["admin", "user"]}
    return {
        "no exp": signed(exp=None),
        "no iat": signed(iat=None),
        "no sub": signed(sub=None),
        "expired": signed(iat=now - 3600, exp=now - 600),
        "iat far in the future": signed(iat=now + 3600, exp=now + 7200),
        "alg none": f"{_part({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{payload}.",
        "other algorithm": signed(ec.generate_private_key(ec.SECP256R1()), "ES256"),
        "HS256 signed with the public key": f"{confused_input}.{_b64(confused_mac)}",
        "wrong audience": signed(aud="someone-else"),
        "wrong issuer": signed(iss="someone-else"),
        "unknown kid": signed(key_id="not-a-published-kid"),
        "other key with a known kid": signed(Ed25519PrivateKey.generate()),
        "tampered payload": f"{header}.{_part(escalated)}.{signature}",
        "garbage": "not-a-jwt",
    }
