"""Whatever arrives instead of our form gets a clear 4xx page, never a server error."""

import httpx
import pytest

from .web_bff_support import REGISTRATION_URL, FakeBackends, csrf_token


def assert_html_page(response: httpx.Response, status: int, text: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert text in response.text


@pytest.mark.parametrize("path", ["/", "/login", "/logout"])
async def test_json_is_refused_as_an_unsupported_form(
    client: httpx.AsyncClient, backends: FakeBackends, path: str
) -> None:
    token = await csrf_token(client)

    response = await client.post(path, json={"email": "ada@example.com", "csrf_token": token})

    assert_html_page(response, 415, "only accepts the form on our own page")
    assert backends.requests == []


async def test_a_multipart_body_is_refused_as_an_unsupported_form(
    client: httpx.AsyncClient,
) -> None:
    token = await csrf_token(client)

    response = await client.post("/", files={"csrf_token": (None, token)})

    assert_html_page(response, 415, "only accepts the form on our own page")


async def test_a_body_over_16_kib_is_refused(client: httpx.AsyncClient) -> None:
    token = await csrf_token(client)

    response = await client.post("/", data={"csrf_token": token, "name": "n" * 17_000})

    assert_html_page(response, 413, "larger than we accept")


@pytest.mark.parametrize(
    "body",
    [
        b"csrf_token&email",
        b"email=%FF%FE&name=x",
        b"email=\xc3\xa9",
        b"email=a&email=b",
        b"&".join([b"f%d=1" % n for n in range(11)]),
    ],
    ids=["no-values", "bad-utf8-escape", "raw-bytes", "repeated-field", "too-many-fields"],
)
async def test_a_malformed_form_is_refused(
    client: httpx.AsyncClient, backends: FakeBackends, body: bytes
) -> None:
    response = await client.post(
        "/", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert_html_page(response, 400, "We could not read that form")
    assert not backends.sent("POST", f"{REGISTRATION_URL}/registrations")


async def test_a_get_only_page_refuses_other_methods_with_a_page(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/account")

    assert_html_page(response, 405, "cannot be used that way")
