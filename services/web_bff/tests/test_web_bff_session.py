"""The session: renewed transparently while the refresh token is valid, ended cleanly otherwise."""

import json
import time

import httpx
import pytest

from alta_devstack.jwt_attacks import ATTACKS, jwt_attacks

from .web_bff_support import (
    AUDIENCE,
    AUTHZ_URL,
    FAKE_REFRESH,
    ISSUER,
    REGISTRATION_URL,
    ClientFactory,
    FakeBackends,
    SigningKey,
    csrf_token,
    error,
    set_cookie_headers,
    times_out,
    tokens_answer,
)

ME = f"{REGISTRATION_URL}/users/me"
REFRESH = f"{AUTHZ_URL}/token/refresh"
USER = {
    "id": "6f1c2b1e-2f7e-4a31-9d64-3c7f2f0e9a10",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "status": "confirmed",
    "registered_at": "2025-12-03T10:15:00Z",
    "confirmed_at": None,
}


def serve_user_for(backends: FakeBackends, access_token: str) -> None:
    def me(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {access_token}":
            return error(401, "invalid_token")
        return httpx.Response(200, json=USER)

    backends.answer("GET", ME, me)


def expired(key: SigningKey, sid: str = "session-1") -> str:
    now = int(time.time())
    return key.sign(iat=now - 1000, exp=now - 100, sid=sid)


def cleared(response: httpx.Response, name: str) -> bool:
    return any("Max-Age=0" in cookie for cookie in set_cookie_headers(response, name))


async def test_an_expired_access_token_is_renewed_without_the_person_noticing(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    renewed = signing_key.sign(sid="session-1")
    backends.answer("POST", REFRESH, tokens_answer(renewed, "next-refresh"))
    serve_user_for(backends, renewed)
    client.cookies.set("alta_session", expired(signing_key))
    client.cookies.set("alta_refresh", FAKE_REFRESH)

    response = await client.get("/account")

    assert response.status_code == 200
    assert "Ada Lovelace" in response.text
    [sent] = backends.sent("POST", REFRESH)
    assert json.loads(sent.content) == {"refresh_token": FAKE_REFRESH}
    [access_cookie] = set_cookie_headers(response, "alta_session")
    [refresh_cookie] = set_cookie_headers(response, "alta_refresh")
    assert access_cookie.startswith(f"alta_session={renewed};")
    assert refresh_cookie.startswith("alta_refresh=next-refresh;")
    assert "HttpOnly" in access_cookie
    assert "HttpOnly" in refresh_cookie
    # The next page, with the renewed cookies, needs no second refresh.
    client.cookies.clear()
    client.cookies.set("alta_session", renewed)
    client.cookies.set("alta_refresh", "next-refresh")
    assert (await client.get("/account")).status_code == 200
    assert len(backends.sent("POST", REFRESH)) == 1


async def test_a_browser_that_dropped_the_access_cookie_is_renewed_too(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    renewed = signing_key.sign()
    backends.answer("POST", REFRESH, tokens_answer(renewed))
    serve_user_for(backends, renewed)
    client.cookies.set("alta_refresh", FAKE_REFRESH)

    response = await client.get("/account")

    assert response.status_code == 200


async def test_a_refused_refresh_ends_the_session(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    backends.answer("POST", REFRESH, error(401, "invalid_grant"))
    client.cookies.set("alta_session", expired(signing_key))
    client.cookies.set("alta_refresh", "revoked-or-reused")

    response = await client.get("/account")

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert cleared(response, "alta_session")
    assert cleared(response, "alta_refresh")
    assert not backends.sent("GET", ME)


@pytest.mark.parametrize("failure", ["down", "server error"])
async def test_authz_unavailable_during_renewal_asks_to_retry_and_keeps_the_session(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey, failure: str
) -> None:
    await client.get("/login")  # the JWKS is fetched while authz is up
    backends.answer("POST", REFRESH, times_out if failure == "down" else error(503, "down"))
    client.cookies.set("alta_session", expired(signing_key))
    client.cookies.set("alta_refresh", FAKE_REFRESH)

    response = await client.get("/account")

    assert response.status_code == 503
    assert "try again in a moment" in response.text
    assert not set_cookie_headers(response, "alta_session")
    assert not set_cookie_headers(response, "alta_refresh")


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("with_refresh_cookie", [False, True])
async def test_every_forged_or_broken_token_sends_to_login(
    client: httpx.AsyncClient,
    backends: FakeBackends,
    signing_key: SigningKey,
    attack: str,
    with_refresh_cookie: bool,
) -> None:
    token = jwt_attacks(
        signing_key.private_key, kid=signing_key.kid, issuer=ISSUER, audience=AUDIENCE
    )[attack]
    backends.answer("POST", REFRESH, error(401, "invalid_grant"))
    client.cookies.set("alta_session", token)
    if with_refresh_cookie:
        client.cookies.set("alta_refresh", "not-a-valid-refresh-token")

    response = await client.get("/account")

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert cleared(response, "alta_session")
    assert not backends.sent("GET", ME), "a bad token never reaches registration"


async def test_log_out_everywhere_revokes_every_session_and_ends_this_one(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    access_token = signing_key.sign(sid="session-1")
    serve_user_for(backends, access_token)
    backends.answer(
        "POST", f"{AUTHZ_URL}/sessions/revoke-all", httpx.Response(200, json={"revoked": 3})
    )
    client.cookies.set("alta_session", access_token)
    client.cookies.set("alta_refresh", FAKE_REFRESH)
    page = await client.get("/account")
    assert '<form method="post" action="/logout-everywhere">' in page.text
    token = await csrf_token(client, "/account")

    forged = await client.post("/logout-everywhere", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert not backends.sent("POST", f"{AUTHZ_URL}/sessions/revoke-all")

    response = await client.post("/logout-everywhere", data={"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    [revoked] = backends.sent("POST", f"{AUTHZ_URL}/sessions/revoke-all")
    assert revoked.headers["authorization"] == f"Bearer {access_token}"
    assert cleared(response, "alta_session")
    assert cleared(response, "alta_refresh")


async def test_a_form_opened_before_a_renewal_still_submits(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    first = signing_key.sign(sid="session-1")
    serve_user_for(backends, first)
    client.cookies.set("alta_session", first)
    client.cookies.set("alta_refresh", FAKE_REFRESH)
    token = await csrf_token(client, "/account")
    # Fifteen minutes later the access token has run out and is renewed on the way in.
    client.cookies.set("alta_session", expired(signing_key, sid="session-1"))
    backends.answer("POST", REFRESH, tokens_answer(signing_key.sign(sid="session-1"), "next"))
    backends.answer("POST", f"{AUTHZ_URL}/logout", httpx.Response(204))

    response = await client.post("/logout", data={"csrf_token": token})

    assert response.status_code == 303
    assert len(backends.sent("POST", f"{AUTHZ_URL}/logout")) == 1
    # Logout's own cleared cookies win over the renewal's.
    assert cleared(response, "alta_session")
    assert not [c for c in set_cookie_headers(response, "alta_session") if "Max-Age=0" not in c]


@pytest.mark.parametrize(
    ("trusted", "expected"), [("", "127.0.0.1"), ("127.0.0.1/32", "203.0.113.9")]
)
async def test_the_client_address_is_taken_from_forwarded_headers_only_from_trusted_proxies(
    client_factory: ClientFactory, backends: FakeBackends, trusted: str, expected: str
) -> None:
    client = await client_factory(trusted_proxies=trusted)
    backends.answer("POST", f"{AUTHZ_URL}/login", error(401, "invalid_credentials"))
    token = await csrf_token(client, "/login")

    await client.post(
        "/login",
        data={"email": "ada@example.com", "password": "x" * 12, "csrf_token": token},
        headers={"x-forwarded-for": "203.0.113.9"},
    )

    [sent] = backends.sent("POST", f"{AUTHZ_URL}/login")
    assert sent.headers["x-forwarded-for"] == expected
