"""authz login, JWKS and policy decisions, against a real server and database."""

from typing import Any

import httpx
import jwt
import pytest
from pydantic import ValidationError

from alta_authz.settings import Settings

from .conftest import CONFIRMED, PASSWORD, PENDING, login


async def test_a_confirmed_user_gets_an_eddsa_token_verifiable_with_the_jwks(
    client: httpx.AsyncClient,
) -> None:
    response = await login(client, "OK@Example.com")

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    jwks = (await client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA"
    [key] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    claims = jwt.decode(
        body["access_token"],
        jwt.PyJWK(key).key,
        algorithms=["EdDSA"],
        audience="alta",
        issuer="alta-authz",
    )
    assert claims["sub"] == str(CONFIRMED)
    assert claims["roles"] == ["user"]
    assert claims["exp"] - claims["iat"] == 900
    assert "d" not in key, "the JWKS must never publish the private part"


async def test_wrong_password_and_unknown_address_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    wrong = await login(client, "ok@example.com", "not the password")
    unknown = await login(client, "nobody@example.com")
    malformed = await login(client, "not-an-email")

    assert wrong.status_code == unknown.status_code == malformed.status_code == 401
    assert wrong.json() == unknown.json() == malformed.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"


async def test_an_unconfirmed_user_cannot_log_in(client: httpx.AsyncClient) -> None:
    response = await login(client, "pending@example.com")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "email_not_confirmed"


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"[" * 10_000, "headers": {"content-type": "application/json"}}, 400),
        (
            {
                "content": b'{"email": "ok@example.com", "password": "abcdefgh\\ud800"}',
                "headers": {"content-type": "application/json"},
            },
            422,
        ),
        ({"json": {"email": "ok@example.com"}}, 422),
        ({"json": {"email": ["ok@example.com"], "password": PASSWORD}}, 422),
        ({"data": {"email": "ok@example.com", "password": PASSWORD}}, 415),
        ({"json": {"email": "ok@example.com", "password": "p" * 20_000}}, 413),
    ],
)
async def test_bad_login_requests_get_a_clear_4xx(
    client: httpx.AsyncClient, kwargs: dict[str, Any], status: int
) -> None:
    response = await client.post("/login", **kwargs)

    assert response.status_code == status
    assert response.json()["error"]["message"]


async def decide(client: httpx.AsyncClient, token: str, **body: str) -> httpx.Response:
    return await client.post("/authorize", json=body, headers={"authorization": f"Bearer {token}"})


async def test_the_policy_allows_owners_and_admins_and_nothing_more(
    client: httpx.AsyncClient,
) -> None:
    user = (await login(client, "ok@example.com")).json()["access_token"]
    admin = (await login(client, "admin@example.com")).json()["access_token"]
    own, other = str(CONFIRMED), str(PENDING)

    cases = [
        (user, {"action": "profile:read", "resource": f"user:{own}"}, True),
        (user, {"action": "profile:update", "resource": f"user:{own}"}, True),
        (user, {"action": "password:change", "resource": f"user:{own}"}, True),
        (user, {"action": "sessions:revoke", "resource": f"user:{own}"}, True),
        # Horizontal escalation: another account's data.
        (user, {"action": "profile:read", "resource": f"user:{other}"}, False),
        (user, {"action": "profile:update", "resource": f"user:{other}"}, False),
        (user, {"action": "profile:read", "resource": "user"}, False),
        (user, {"action": "profile:read", "resource": "user:"}, False),
        # Vertical escalation: admin actions.
        (user, {"action": "registrations:list", "resource": "registrations"}, False),
        (user, {"action": "deliveries:read", "resource": "deliveries"}, False),
        (admin, {"action": "registrations:list", "resource": "registrations"}, True),
        (admin, {"action": "deliveries:read", "resource": "deliveries"}, True),
        (admin, {"action": "profile:read", "resource": f"user:{other}"}, True),
        (admin, {"action": "profile:update", "resource": f"user:{other}"}, False),
        (admin, {"action": "profile:delete", "resource": f"user:{other}"}, False),
    ]
    for token, body, allowed in cases:
        response = await decide(client, token, **body)
        assert response.status_code == 200
        assert response.json() == {"allowed": allowed}, body


async def test_authorize_needs_a_valid_token(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"authorization": "Bearer nonsense"}, {"authorization": "Basic abc"}):
        response = await client.post(
            "/authorize",
            json={"action": "registrations:list", "resource": "registrations"},
            headers=headers,
        )
        assert response.status_code == 401


def test_production_refuses_to_start_without_signing_keys() -> None:
    with pytest.raises(ValidationError, match="JWT_KEYS_DIR"):
        Settings(app_env="production")
