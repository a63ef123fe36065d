"""The pages render accessibly, without scripts, and with the security headers."""

import re

import httpx
import pytest

from alta_web_bff.app import create_app
from alta_web_bff.settings import Settings

from .web_bff_support import (
    AUTHZ_URL,
    PUBLIC_URL,
    ClientFactory,
    FakeBackends,
    SigningKey,
    set_cookie_headers,
)

CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"


async def test_sign_up_form_has_labelled_fields_a_csrf_token_and_security_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for name in ("email", "name", "password"):
        assert f'<label for="{name}">' in html
        assert f'id="{name}" name="{name}"' in html
    assert '<form method="post" action="/">' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token
    [cookie] = set_cookie_headers(response, "alta_csrf")
    assert f"alta_csrf={token.group(1)};" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers
    assert "<script" not in html
    assert "style=" not in html


async def test_login_form_has_labelled_fields_and_a_csrf_token(client: httpx.AsyncClient) -> None:
    html = (await client.get("/login")).text

    assert '<form method="post" action="/login">' in html
    assert '<label for="email">' in html
    assert '<label for="password">' in html
    assert 'autocomplete="current-password"' in html
    assert 'name="csrf_token"' in html


async def test_https_public_url_adds_hsts_and_secure_cookies(client_factory: ClientFactory) -> None:
    client = await client_factory(public_url="https://bff.example")

    response = await client.get("/")

    assert response.headers["strict-transport-security"].startswith("max-age=")
    # __Host-: the browser insists on Secure, Path=/ and no Domain, so no subdomain can plant it.
    [cookie] = set_cookie_headers(response, "__Host-alta_csrf")
    assert {"Secure", "HttpOnly", "Path=/", "SameSite=lax"} <= {
        part.strip() for part in cookie.split(";")
    }
    assert "domain=" not in cookie.lower()
    assert not set_cookie_headers(response, "alta_csrf")


async def test_the_stylesheet_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/style.css")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ".card" in response.text


async def test_an_unknown_page_is_an_html_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text
    assert response.headers["content-security-policy"] == CSP


async def test_readiness_does_not_cascade_from_the_backends(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    backends.reachable = False

    assert (await client.get("/readyz")).status_code == 200
    page = await client.get("/")
    assert page.status_code == 200
    assert "Create your account" in page.text


async def test_an_unexpected_failure_still_shows_a_page() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug, not an outage")

    app = create_app(
        Settings(app_env="test", public_url=PUBLIC_URL, authz_url=AUTHZ_URL),
        backend_transport=httpx.MockTransport(broken),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=PUBLIC_URL
        ) as client,
    ):
        # A well-formed token, so that its key is fetched.
        client.cookies.set("alta_session", SigningKey().sign())
        response = await client.get("/account")

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Something went wrong on our side" in response.text
    assert response.headers["content-security-policy"] == CSP


@pytest.mark.parametrize("path", ["/", "/login", "/check-inbox", "/account", "/no-such-page"])
async def test_every_answer_carries_the_security_headers_and_no_inline_script(
    client_factory: ClientFactory, path: str
) -> None:
    client = await client_factory(public_url="https://bff.example")

    response = await client.get(path)

    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["strict-transport-security"] == "max-age=63072000"
    assert "<script" not in response.text.lower()
    assert "onclick=" not in response.text.lower()
