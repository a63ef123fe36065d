"""Logging in: a session cookie the page scripts cannot read, or a message saying why not."""

import json

import httpx
import pytest

from .web_bff_support import (
    AUTHZ_URL,
    ClientFactory,
    FakeBackends,
    csrf_token,
    error,
    set_cookie_headers,
    tokens_answer,
)

LOGIN = f"{AUTHZ_URL}/login"
PASSWORD = "correct horse battery"


async def log_in(client: httpx.AsyncClient, email: str = "ada@example.com") -> httpx.Response:
    token = await csrf_token(client, "/login")
    return await client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )


async def test_a_login_sets_an_http_only_session_cookie_and_opens_the_account(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    backends.answer("POST", LOGIN, tokens_answer("header.payload.signature"))

    response = await log_in(client, email=" ada@example.com")

    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    [cookie] = set_cookie_headers(response, "alta_session")
    attributes = [part.strip() for part in cookie.split(";")]
    assert attributes[0] == "alta_session=header.payload.signature"
    assert {"HttpOnly", "SameSite=lax", "Path=/", "Max-Age=900"} <= set(attributes)
    assert "Secure" not in attributes
    [refresh] = set_cookie_headers(response, "alta_refresh")
    refresh_attributes = [part.strip() for part in refresh.split(";")]
    assert refresh_attributes[0] == "alta_refresh=opaque-refresh-token"
    assert {"HttpOnly", "SameSite=lax", "Path=/", "Max-Age=1209600"} <= set(refresh_attributes)
    [sent] = backends.sent("POST", LOGIN)
    assert json.loads(sent.content) == {"email": "ada@example.com", "password": PASSWORD}
    # The client's address, for authz's per-address limit (ASGITransport's client).
    assert sent.headers["x-forwarded-for"] == "127.0.0.1"


async def test_the_session_cookie_is_secure_on_https(
    client_factory: ClientFactory, backends: FakeBackends
) -> None:
    client = await client_factory(public_url="https://bff.example")
    backends.answer("POST", LOGIN, tokens_answer("header.payload.signature"))

    response = await log_in(client)

    for name in ("__Host-alta_session", "__Host-alta_refresh"):
        [cookie] = set_cookie_headers(response, name)
        attributes = {part.strip() for part in cookie.split(";")}
        assert {"Secure", "HttpOnly", "Path=/", "SameSite=lax"} <= attributes
        assert "domain=" not in cookie.lower()
    assert not set_cookie_headers(response, "alta_session")


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        (error(401, "invalid_credentials"), 401, "Email or password is incorrect"),
        (error(403, "email_not_confirmed"), 403, "Please confirm your email first"),
        (error(403, "account_locked"), 401, "Email or password is incorrect"),
        (error(422, "invalid_input"), 422, "Enter a valid email address and password"),
    ],
    ids=["wrong-password", "not-confirmed", "other-refusal", "invalid-input"],
)
async def test_a_refused_login_says_why_and_keeps_the_email(
    client: httpx.AsyncClient,
    backends: FakeBackends,
    answer: httpx.Response,
    status: int,
    message: str,
) -> None:
    backends.answer("POST", LOGIN, answer)

    response = await log_in(client)

    assert response.status_code == status
    assert message in response.text
    assert 'value="ada@example.com"' in response.text
    assert PASSWORD not in response.text
    assert not set_cookie_headers(response, "alta_session")


async def test_too_many_attempts_are_told_when_to_come_back(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    backends.answer(
        "POST",
        LOGIN,
        httpx.Response(
            429, headers={"Retry-After": "30"}, json={"error": {"code": "too_many_requests"}}
        ),
    )

    response = await log_in(client)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert "Too many failed login attempts" in response.text
    assert "try again in 30 seconds" in response.text


async def test_missing_fields_are_flagged_without_calling_authz(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    token = await csrf_token(client, "/login")

    response = await client.post("/login", data={"email": "", "password": "", "csrf_token": token})

    assert response.status_code == 422
    assert "Enter your email address." in response.text
    assert "Enter your password." in response.text
    assert not backends.sent("POST", LOGIN)


@pytest.mark.parametrize("reachable", [True, False])
async def test_a_failing_authz_asks_to_try_again_in_a_moment(
    client: httpx.AsyncClient, backends: FakeBackends, reachable: bool
) -> None:
    backends.answer("POST", LOGIN, error(503, "unavailable"))
    token = await csrf_token(client, "/login")
    backends.reachable = reachable

    response = await client.post(
        "/login", data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token}
    )

    assert response.status_code == 503
    assert "try again in a moment" in response.text
    assert not set_cookie_headers(response, "alta_session")
