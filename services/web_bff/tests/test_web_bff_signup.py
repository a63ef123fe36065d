"""Signing up: the person sees where to go next, or what to fix next to each field."""

import json

import httpx
import pytest

from .web_bff_support import REGISTRATION_URL, FakeBackends, csrf_token, error

REGISTRATIONS = f"{REGISTRATION_URL}/registrations"
PASSWORD = "correct horse battery"
SIGN_UP = {"email": "ada@example.com", "name": "Ada Lovelace", "password": PASSWORD}


async def sign_up(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post("/", data={**SIGN_UP, **fields, "csrf_token": token})


def accepted(backends: FakeBackends) -> None:
    backends.answer("POST", REGISTRATIONS, httpx.Response(202, json={"status": "accepted"}))


async def test_a_sign_up_leads_to_check_your_inbox(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    accepted(backends)

    response = await sign_up(client, email="  ada@example.com ")
    inbox = await client.get(response.headers["location"])

    assert response.status_code == 303
    assert inbox.status_code == 200
    assert "Check your inbox" in inbox.text
    [sent] = backends.sent("POST", REGISTRATIONS)
    assert json.loads(sent.content) == SIGN_UP


async def test_an_existing_address_gets_the_same_page_as_a_new_one(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    # Registration answers alike for both; the BFF must not add a difference of its own.
    accepted(backends)

    new = await sign_up(client, email="new@example.com")
    existing = await sign_up(client, email="ada@example.com")

    assert (new.status_code, new.headers["location"]) == (303, "/check-inbox")
    assert (existing.status_code, existing.headers["location"]) == (303, "/check-inbox")
    assert new.content == existing.content


async def test_registrations_field_errors_are_shown_next_to_the_fields(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    backends.answer(
        "POST",
        REGISTRATIONS,
        error(
            422,
            "invalid_input",
            fields={
                "email": "This domain does not accept email.",
                "password": "This password is too common.",
            },
        ),
    )

    response = await sign_up(client, email="ada@nowhere.invalid", name="Ada <Byron>")

    assert response.status_code == 422
    html = response.text
    assert '<p class="error" id="email-error">' in html
    assert "This domain does not accept email." in html
    assert "This password is too common." in html
    assert 'aria-describedby="email-error"' in html
    assert 'aria-describedby="password-hint password-error"' in html
    assert 'value="ada@nowhere.invalid"' in html
    assert 'value="Ada &lt;Byron&gt;"' in html
    assert PASSWORD not in html


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": ""}, "email", "Enter your email address."),
        ({"email": "ada.example.com"}, "email", "Enter an email address like name@example.com."),
        ({"email": "a" * 250 + "@x.io"}, "email", "Use at most 254 characters."),
        ({"name": "   "}, "name", "Enter your name."),
        ({"name": "n" * 101}, "name", "Use at most 100 characters."),
        ({"password": "short"}, "password", "Use at least 8 characters."),
        ({"password": "p" * 129}, "password", "Use at most 128 characters."),
    ],
)
async def test_obviously_wrong_fields_are_flagged_without_calling_registration(
    client: httpx.AsyncClient,
    backends: FakeBackends,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    response = await sign_up(client, **fields)

    assert response.status_code == 422
    assert f'<p class="error" id="{field}-error">' in response.text
    assert message in response.text
    assert not backends.sent("POST", REGISTRATIONS)
    assert fields.get("password", PASSWORD) not in response.text


async def test_too_many_sign_ups_are_told_to_wait(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    backends.answer("POST", REGISTRATIONS, error(429, "too_many_requests"))

    response = await sign_up(client)

    assert response.status_code == 429
    assert "Too many attempts, try again later." in response.text


@pytest.mark.parametrize("answer", [error(503, "unavailable"), error(500, "error")])
async def test_a_failing_registration_asks_to_try_again_in_a_moment(
    client: httpx.AsyncClient, backends: FakeBackends, answer: httpx.Response
) -> None:
    backends.answer("POST", REGISTRATIONS, answer)

    response = await sign_up(client)

    assert response.status_code == 503
    assert "try again in a moment" in response.text
    assert 'value="ada@example.com"' in response.text
    assert PASSWORD not in response.text


async def test_an_unreachable_registration_asks_to_try_again_in_a_moment(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    token = await csrf_token(client)
    backends.reachable = False

    response = await client.post("/", data={**SIGN_UP, "csrf_token": token})

    assert response.status_code == 503
    assert "try again in a moment" in response.text
