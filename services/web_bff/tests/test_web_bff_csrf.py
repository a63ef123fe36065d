"""Forms posted from another site, or without this browser's token, never reach a backend."""

from typing import Any

import httpx
import pytest

from .web_bff_support import (
    PUBLIC_URL,
    REGISTRATION_URL,
    FakeBackends,
    SigningKey,
    csrf_token,
    set_cookie_headers,
)

CSRF_REFUSED = "Your session expired or the form was sent from another site"
SIGN_UP = {"email": "ada@example.com", "name": "Ada", "password": "correct horse"}


@pytest.fixture
def registration_accepts(backends: FakeBackends) -> None:
    backends.answer(
        "POST",
        f"{REGISTRATION_URL}/registrations",
        httpx.Response(202, json={"status": "accepted"}),
    )


def assert_refused(response: httpx.Response, backends: FakeBackends) -> None:
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert CSRF_REFUSED in response.text
    assert not backends.sent("POST", f"{REGISTRATION_URL}/registrations")


async def test_a_form_without_a_token_is_refused(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    response = await client.post("/", data=SIGN_UP)

    assert_refused(response, backends)


async def test_a_token_that_is_not_this_browsers_is_refused(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    other_browsers_token = await csrf_token(client)
    client.cookies.clear()
    await csrf_token(client)

    response = await client.post("/", data={**SIGN_UP, "csrf_token": other_browsers_token})

    assert_refused(response, backends)


async def test_a_token_we_did_not_sign_is_refused(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    # The naive double submit an attacker who can write our cookies would try.
    forged = "attacker-chosen-nonce.attacker-chosen-signature"
    client.cookies.set("alta_csrf", forged)

    response = await client.post("/", data={**SIGN_UP, "csrf_token": forged})

    assert_refused(response, backends)


async def test_a_token_issued_for_another_session_is_refused(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    token = await csrf_token(client)
    client.cookies.set("alta_session", "a-session-planted-after-the-page-was-shown")

    response = await client.post("/", data={**SIGN_UP, "csrf_token": token})

    assert_refused(response, backends)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver:8080"},
        {"Referer": "https://evil.example/form.html"},
    ],
)
async def test_a_form_from_another_origin_is_refused(
    client: httpx.AsyncClient, backends: FakeBackends, headers: dict[str, str]
) -> None:
    token = await csrf_token(client)

    response = await client.post("/", data={**SIGN_UP, "csrf_token": token}, headers=headers)

    assert_refused(response, backends)


@pytest.mark.usefixtures("registration_accepts")
@pytest.mark.parametrize(
    "headers", [{}, {"Origin": PUBLIC_URL}, {"Referer": f"{PUBLIC_URL}/?from=mail"}]
)
async def test_a_form_from_our_own_page_is_accepted(
    client: httpx.AsyncClient, backends: FakeBackends, headers: dict[str, str]
) -> None:
    token = await csrf_token(client)

    response = await client.post("/", data={**SIGN_UP, "csrf_token": token}, headers=headers)

    assert response.status_code == 303
    assert len(backends.sent("POST", f"{REGISTRATION_URL}/registrations")) == 1


async def test_login_and_logout_need_the_token_too(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    client.cookies.set("alta_session", signing_key.sign())

    login = await client.post("/login", data={"email": "ada@example.com", "password": "x" * 10})
    logout = await client.post("/logout", data={"csrf_token": ""})

    assert login.status_code == 403
    assert logout.status_code == 403
    assert "alta_session" not in logout.headers.get("set-cookie", "")
    assert [r for r in backends.requests if r.method == "POST"] == []


@pytest.mark.parametrize("path", ["/", "/login", "/logout", "/logout-everywhere"])
@pytest.mark.parametrize(
    "body",
    [
        {"data": {**SIGN_UP, "csrf_token": "x"}},
        {"files": {"email": (None, "ada@example.com")}, "data": {"csrf_token": "x"}},
        {
            "content": b"email=ada@example.com&password=correct horse",
            "headers": {"content-type": "text/plain"},
        },
    ],
    ids=["urlencoded", "multipart", "text-plain"],
)
async def test_cross_site_posts_of_every_form_encoding_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    backends: FakeBackends,
    signing_key: SigningKey,
    path: str,
    body: dict[str, Any],
) -> None:
    # A signed-in browser: the session is what a forged post would try to use.
    client.cookies.set("alta_session", signing_key.sign())
    client.cookies.set("alta_refresh", "a-refresh-token")
    await csrf_token(client)
    headers = {"origin": "https://evil.example", **body.pop("headers", {})}

    response = await client.post(path, headers=headers, **body)

    assert response.status_code == 403
    assert CSRF_REFUSED in response.text
    assert [r for r in backends.requests if r.method == "POST"] == []
    assert not set_cookie_headers(response, "alta_session")
    assert not set_cookie_headers(response, "alta_refresh")
