"""The account page trusts only tokens signed by authz's keys, checked against its JWKS."""

import json
from collections.abc import Callable, Mapping

import httpx
import pytest

from .web_bff_support import (
    AUTHZ_URL,
    REGISTRATION_URL,
    FakeBackends,
    SigningKey,
    csrf_token,
    error,
    set_cookie_headers,
    times_out,
    tokens_answer,
    unsigned_token,
)

ME = f"{REGISTRATION_URL}/users/me"
USER = {
    "id": "6f1c2b1e-2f7e-4a31-9d64-3c7f2f0e9a10",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "status": "confirmed",
    "registered_at": "2025-12-03T10:15:00Z",
    "confirmed_at": "2025-12-03T10:20:00Z",
}


def serve_user(backends: FakeBackends, access_token: str, user: Mapping[str, object]) -> None:
    """registration's /users/me, answering only for the right bearer token."""

    def me(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {access_token}":
            return error(401, "invalid_token")
        return httpx.Response(200, json=user)

    backends.answer("GET", ME, me)


def assert_sent_to_login(response: httpx.Response) -> None:
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    [cleared] = set_cookie_headers(response, "alta_session")
    assert "Max-Age=0" in cleared


async def test_a_valid_session_shows_the_account(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    access_token = signing_key.sign()
    serve_user(backends, access_token, USER)
    client.cookies.set("alta_session", access_token)

    response = await client.get("/account")

    assert response.status_code == 200
    assert "ada@example.com" in response.text
    assert "Ada Lovelace" in response.text
    assert "Confirmed" in response.text
    assert "3 December 2025" in response.text
    assert '<form method="post" action="/logout">' in response.text


async def test_an_unconfirmed_account_says_so(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    access_token = signing_key.sign()
    serve_user(backends, access_token, {**USER, "status": "pending", "confirmed_at": None})
    client.cookies.set("alta_session", access_token)

    response = await client.get("/account")

    assert response.status_code == 200
    assert "Waiting for confirmation" in response.text


async def test_without_a_session_the_account_sends_to_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/account")

    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def expired(key: SigningKey) -> str:
    return key.sign(iat=1_700_000_000, exp=1_700_000_900)


def tampered(key: SigningKey) -> str:
    header, _, signature = key.sign(sub="someone").split(".")
    other_payload = key.sign(sub="someone-else").split(".")[1]
    return f"{header}.{other_payload}.{signature}"


def unknown_kid(key: SigningKey) -> str:
    return SigningKey(kid="not-published").sign()


def forged_with_a_known_kid(key: SigningKey) -> str:
    return SigningKey(kid=key.kid).sign()


def alg_none(key: SigningKey) -> str:
    return unsigned_token(key.kid)


def other_audience(key: SigningKey) -> str:
    return key.sign(aud="someone-else")


def other_issuer(key: SigningKey) -> str:
    return key.sign(iss="someone-else")


def garbage(key: SigningKey) -> str:
    return "not-a-jwt"


@pytest.mark.parametrize(
    "make_token",
    [
        expired,
        tampered,
        unknown_kid,
        forged_with_a_known_kid,
        alg_none,
        other_audience,
        other_issuer,
        garbage,
    ],
)
async def test_a_token_authz_did_not_sign_for_us_sends_to_login(
    client: httpx.AsyncClient,
    backends: FakeBackends,
    signing_key: SigningKey,
    make_token: Callable[[SigningKey], str],
) -> None:
    access_token = make_token(signing_key)
    serve_user(backends, access_token, USER)
    client.cookies.set("alta_session", access_token)

    response = await client.get("/account")

    assert_sent_to_login(response)
    assert not backends.sent("GET", ME)


async def test_a_token_registration_refuses_sends_to_login(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    backends.answer("GET", ME, error(401, "invalid_token"))
    client.cookies.set("alta_session", signing_key.sign())

    response = await client.get("/account")

    assert_sent_to_login(response)


@pytest.mark.parametrize("reachable", [True, False])
async def test_a_failing_registration_asks_to_try_again_in_a_moment(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey, reachable: bool
) -> None:
    access_token = signing_key.sign()
    client.cookies.set("alta_session", access_token)
    # The keys are fetched while authz answers; then registration fails.
    backends.answer("GET", ME, error(503, "unavailable") if reachable else times_out)

    response = await client.get("/account")

    assert response.status_code == 503
    assert "try again in a moment" in response.text
    assert "alta_session" not in response.headers.get("set-cookie", "")


async def test_logging_out_ends_the_session(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    access_token = signing_key.sign()
    serve_user(backends, access_token, USER)
    backends.answer("POST", f"{AUTHZ_URL}/login", tokens_answer(access_token, "the-refresh"))
    backends.answer("POST", f"{AUTHZ_URL}/logout", httpx.Response(204))
    login_token = await csrf_token(client, "/login")
    await client.post(
        "/login",
        data={"email": "ada@example.com", "password": "pw-123456", "csrf_token": login_token},
    )
    logout_token = await csrf_token(client, "/account")

    response = await client.post("/logout", data={"csrf_token": logout_token})
    after = await client.get("/account")

    assert_sent_to_login(response)
    assert "alta_session" not in client.cookies
    assert "alta_refresh" not in client.cookies
    [revoked] = backends.sent("POST", f"{AUTHZ_URL}/logout")
    assert json.loads(revoked.content) == {"refresh_token": "the-refresh"}
    assert after.status_code == 303
    assert after.headers["location"] == "/login"
