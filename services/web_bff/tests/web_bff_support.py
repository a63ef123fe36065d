"""Fakes for the BFF's unit tests: registration and authz over httpx, and a real EdDSA key."""

import base64
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REGISTRATION_URL = "http://registration.test"
AUTHZ_URL = "http://authz.test"
PUBLIC_URL = "http://testserver"
ISSUER = "alta-authz"
AUDIENCE = "alta"

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]
# Starts the app with some settings overridden; returns a browser-like client for it.
ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@dataclass
class SigningKey:
    """An Ed25519 key as authz holds it: it signs access tokens and publishes its public half."""

    kid: str = field(default_factory=lambda: uuid.uuid4().hex)
    private_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private_key.public_key()))
        return {**public, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def sign(self, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "sub": str(uuid.uuid4()),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 900,
            **claims,
        }
        return jwt.encode(payload, self.private_key, algorithm="EdDSA", headers={"kid": self.kid})


def unsigned_token(kid: str) -> str:
    """A token with `alg: none`: no signature at all."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    claims = {"sub": "someone", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 900}
    return f"{part(header)}.{part(claims)}."


FAKE_REFRESH = "opaque-refresh-token"


def tokens_answer(access_token: str, refresh_token: str = FAKE_REFRESH) -> httpx.Response:
    """authz's answer to a login or a refresh."""
    return httpx.Response(
        200,
        json={
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 900,
            "refresh_token": refresh_token,
            "refresh_expires_in": 1_209_600,
        },
    )


def error(status: int, code: str, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code, **extra}})


def times_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no answer in time", request=request)


class FakeBackends:
    """registration and authz as the BFF reaches them, answering what each test sets up.

    Every request that reaches a fake is recorded, so a test can assert nothing was sent.
    """

    def __init__(self, key: SigningKey) -> None:
        self.requests: list[httpx.Request] = []
        self.reachable = True
        self._answers: dict[tuple[str, str], Answer] = {
            ("GET", f"{AUTHZ_URL}/.well-known/jwks.json"): httpx.Response(
                200, json={"keys": [key.jwk()]}
            ),
            ("GET", f"{REGISTRATION_URL}/healthz"): httpx.Response(200, json={"status": "ok"}),
        }

    def answer(self, method: str, url: str, response: Answer) -> None:
        self._answers[(method, url)] = response

    def sent(self, method: str, url: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and str(r.url) == url]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.reachable:
            raise httpx.ConnectError("connection refused", request=request)
        answer = self._answers.get((request.method, str(request.url)))
        if answer is None:
            return error(404, "not_found")
        return answer(request) if callable(answer) else answer


_CSRF_FIELD = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


async def csrf_token(client: httpx.AsyncClient, page: str = "/") -> str:
    """Open `page` as a browser would and return the token of its form (the cookie is kept)."""
    response = await client.get(page)
    match = _CSRF_FIELD.search(response.text)
    assert match, f"no csrf field on {page}"
    return match.group(1)


def set_cookie_headers(response: httpx.Response, name: str) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
