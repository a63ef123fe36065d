"""The link in the confirmation email opens a page; only its button confirms."""

import json

import httpx
import pytest

from .web_bff_support import REGISTRATION_URL, FakeBackends, csrf_token, error

CONFIRMATIONS = f"{REGISTRATION_URL}/confirmations"


async def confirm_by_button(client: httpx.AsyncClient, token: str) -> httpx.Response:
    csrf = await csrf_token(client, f"/confirm?token={token}")
    return await client.post("/confirm", data={"csrf_token": csrf, "token": token})


async def test_opening_the_link_changes_nothing_and_shows_the_button(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    """Mail scanners and prefetching browsers follow links; they must not confirm anything."""
    response = await client.get("/confirm", params={"token": "tok-123_ABC"})

    assert response.status_code == 200
    assert "Confirm my email address" in response.text
    assert 'name="token" value="tok-123_ABC"' in response.text
    assert backends.sent("POST", CONFIRMATIONS) == []


@pytest.mark.parametrize(
    ("answer", "status", "text"),
    [
        (httpx.Response(200, json={"status": "confirmed"}), 200, "Your email is confirmed"),
        (httpx.Response(200, json={"status": "already_confirmed"}), 200, "already used"),
        (error(410, "token_expired"), 410, "This link has expired"),
        (error(400, "invalid_token"), 400, "This link is not valid"),
        (error(404, "invalid_token"), 400, "This link is not valid"),
    ],
    ids=["confirmed", "already-confirmed", "expired", "invalid", "unknown"],
)
async def test_each_outcome_has_its_page(
    client: httpx.AsyncClient,
    backends: FakeBackends,
    answer: httpx.Response,
    status: int,
    text: str,
) -> None:
    backends.answer("POST", CONFIRMATIONS, answer)

    response = await confirm_by_button(client, "tok-123_ABC")

    assert response.status_code == status
    assert text in response.text
    [sent] = backends.sent("POST", CONFIRMATIONS)
    assert json.loads(sent.content) == {"token": "tok-123_ABC"}


async def test_a_confirmed_email_invites_to_log_in(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    backends.answer("POST", CONFIRMATIONS, httpx.Response(200, json={"status": "confirmed"}))

    response = await confirm_by_button(client, "tok")

    assert 'href="/login"' in response.text


async def test_an_expired_link_offers_a_new_one(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    backends.answer("POST", CONFIRMATIONS, error(410, "token_expired"))

    response = await confirm_by_button(client, "tok")

    assert 'href="/resend-confirmation"' in response.text


@pytest.mark.parametrize("query", ["", "?token=", "?token=" + "x" * 600])
async def test_a_link_without_a_plausible_token_is_not_valid(
    client: httpx.AsyncClient, backends: FakeBackends, query: str
) -> None:
    response = await client.get(f"/confirm{query}")

    assert response.status_code == 400
    assert "This link is not valid" in response.text
    assert backends.requests == []


async def test_a_confirmation_from_another_site_is_refused(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    await client.get("/confirm", params={"token": "tok"})

    response = await client.post("/confirm", data={"token": "tok"})

    assert response.status_code == 403
    assert backends.sent("POST", CONFIRMATIONS) == []


@pytest.mark.parametrize("reachable", [True, False])
async def test_a_failing_registration_asks_to_try_again_in_a_moment(
    client: httpx.AsyncClient, backends: FakeBackends, reachable: bool
) -> None:
    backends.answer("POST", CONFIRMATIONS, error(503, "unavailable"))
    csrf = await csrf_token(client, "/confirm?token=tok")
    backends.reachable = reachable

    response = await client.post("/confirm", data={"csrf_token": csrf, "token": "tok"})

    assert response.status_code == 503
    assert "try again in a moment" in response.text
