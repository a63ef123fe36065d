"""JWT verification: one algorithm, every claim checked, keys fetched sparingly."""

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from alta_common.tokens import InvalidToken, JwtVerifier, KeysUnavailable

ISSUER, AUDIENCE = "alta-authz", "alta"


class Authz:
    """A JWKS endpoint behind httpx.MockTransport that counts fetches and can go down."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = "k1"
        self.fetches = 0
        self.down = False

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def handle(self, _: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.down:
            return httpx.Response(503)
        return httpx.Response(200, json=self.jwks())

    def token(self, *, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "iat": now, "exp": now + 60}
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.key, algorithm="EdDSA", headers={"kid": kid or self.kid})


@pytest.fixture
def authz() -> Authz:
    return Authz()


def verifier(authz: Authz, **kwargs: Any) -> JwtVerifier:
    http = httpx.AsyncClient(transport=httpx.MockTransport(authz.handle))
    return JwtVerifier(
        http, jwks_url="http://authz/jwks", issuer=ISSUER, audience=AUDIENCE, **kwargs
    )


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def hs256_with(secret: bytes, kid: str, payload: str) -> str:
    """The key-confusion attack, built by hand: PyJWT itself refuses to sign it."""
    signing_input = f"{_b64({'alg': 'HS256', 'kid': kid})}.{payload}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


async def test_a_valid_token_gives_the_subject_and_roles(authz: Authz) -> None:
    principal = await verifier(authz).verify(authz.token(roles=["user"]))

    assert principal.subject == "u1"
    assert principal.roles == {"user"}


def attacks(authz: Authz) -> dict[str, str]:
    now = int(time.time())
    public_pem = authz.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    valid = authz.token()
    header, payload, signature = valid.split(".")
    return {
        "no exp": authz.token(exp=None),
        "no iat": authz.token(iat=None),
        "no sub": authz.token(sub=None),
        "expired": authz.token(iat=now - 3600, exp=now - 60),
        "iat in the future": authz.token(iat=now + 3600, exp=now + 7200),
        "wrong audience": authz.token(aud="someone-else"),
        "wrong issuer": authz.token(iss="evil"),
        "alg none": f"{_b64({'alg': 'none', 'kid': authz.kid})}.{payload}.",
        "HS256 with the public key": hs256_with(public_pem, authz.kid, payload),
        "tampered payload": f"{header}.{_b64({'sub': 'admin', 'iss': ISSUER})}.{signature}",
        "other key": jwt.encode(
            {"sub": "u1", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60},
            Ed25519PrivateKey.generate(),
            algorithm="EdDSA",
            headers={"kid": authz.kid},
        ),
        "unknown kid": authz.token(kid="nope"),
        "roles not a list": authz.token(roles="admin"),
        "garbage": "not-a-jwt",
    }


@pytest.mark.parametrize(
    "attack",
    [
        "no exp",
        "no iat",
        "no sub",
        "expired",
        "iat in the future",
        "wrong audience",
        "wrong issuer",
        "alg none",
        "HS256 with the public key",
        "tampered payload",
        "other key",
        "unknown kid",
        "roles not a list",
        "garbage",
    ],
)
async def test_every_forged_or_broken_token_is_rejected(authz: Authz, attack: str) -> None:
    with pytest.raises(InvalidToken):
        await verifier(authz).verify(attacks(authz)[attack])


async def test_unknown_kids_refetch_at_most_once_per_interval(authz: Authz) -> None:
    checker = verifier(authz, refresh_interval_seconds=60)
    await checker.verify(authz.token())

    for _ in range(20):
        with pytest.raises(InvalidToken):
            await checker.verify(authz.token(kid="forged"))

    assert authz.fetches == 1, (
        "the first fetch counts: forged kids within the interval fetch nothing"
    )


async def test_a_rotated_key_is_picked_up_and_a_removed_one_stops_working(authz: Authz) -> None:
    checker = verifier(authz, refresh_interval_seconds=0, max_age_seconds=0)
    old_token = authz.token()
    await checker.verify(old_token)

    authz.key, authz.kid = Ed25519PrivateKey.generate(), "k2"

    assert (await checker.verify(authz.token())).subject == "u1"
    with pytest.raises(InvalidToken):
        await checker.verify(old_token)


async def test_authz_down_before_any_fetch_is_unavailable_not_invalid(authz: Authz) -> None:
    authz.down = True

    with pytest.raises(KeysUnavailable):
        await verifier(authz).verify(authz.token())


async def test_known_keys_keep_working_while_authz_is_down(authz: Authz) -> None:
    checker = verifier(authz, refresh_interval_seconds=0, max_age_seconds=0)
    await checker.verify(authz.token())
    authz.down = True

    assert (await checker.verify(authz.token())).subject == "u1"
