"""Confirmation links: single use, expiring, and reported to the CRM once."""

import asyncio

import httpx
import pytest

from alta_common.passwords import PasswordHasher

from .conftest import RegistrationService, drain_queue

VALID = {"email": "grace@example.com", "name": "Grace Hopper", "password": "a long passphrase"}


async def sign_up_and_get_token(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> str:
    await client.post("/registrations", json=VALID)
    [event] = await drain_queue(sqs_endpoint, registration.queues["email"].url, expect=1)
    token: str = event["confirmation_token"]
    return token


async def test_a_link_confirms_once_and_the_crm_hears_of_it_once(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    token = await sign_up_and_get_token(client, registration, sqs_endpoint)

    first = await client.post("/confirmations", json={"token": token})
    second = await client.post("/confirmations", json={"token": token})

    assert (first.status_code, first.json()) == (200, {"status": "confirmed"})
    assert (second.status_code, second.json()) == (200, {"status": "already_confirmed"})
    assert registration.sql("SELECT status FROM registration.users") == [("confirmed",)]
    crm = await drain_queue(sqs_endpoint, registration.queues["crm"].url, expect=2)
    assert sorted(e["type"] for e in crm) == ["registration.confirmed", "registration.created"]
    confirmed = next(e for e in crm if e["type"] == "registration.confirmed")
    assert confirmed["status"] == "confirmed"


async def test_an_expired_link_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    token = await sign_up_and_get_token(client, registration, sqs_endpoint)
    registration.sql(
        "UPDATE registration.confirmation_tokens SET expires_at = now() - interval '1 second'"
    )

    response = await client.post("/confirmations", json={"token": token})

    assert response.status_code == 410
    assert response.json()["error"]["code"] == "token_expired"
    assert registration.sql("SELECT status FROM registration.users") == [("pending",)]
    crm = await drain_queue(sqs_endpoint, registration.queues["crm"].url, expect=1)
    assert [e["type"] for e in crm] == ["registration.created"]


async def test_two_clicks_at_once_confirm_once(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    token = await sign_up_and_get_token(client, registration, sqs_endpoint)

    answers = await asyncio.gather(
        *(client.post("/confirmations", json={"token": token}) for _ in range(5))
    )

    assert sorted(a.json()["status"] for a in answers) == ["already_confirmed"] * 4 + ["confirmed"]
    crm = await drain_queue(sqs_endpoint, registration.queues["crm"].url, expect=2)
    assert sorted(e["type"] for e in crm) == ["registration.confirmed", "registration.created"]


async def test_the_newest_link_wins_and_sets_the_password_of_its_own_sign_up(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    """Whoever signed up first (perhaps not the owner) cannot keep a password on the account."""
    first_token = await sign_up_and_get_token(client, registration, sqs_endpoint)
    await client.post("/registrations", json={**VALID, "password": "the owner's own secret"})
    [reissued] = await drain_queue(sqs_endpoint, registration.queues["email"].url, expect=1)
    assert reissued["type"] == "registration.confirmation_reissued"

    stale = await client.post("/confirmations", json={"token": first_token})
    fresh = await client.post("/confirmations", json={"token": reissued["confirmation_token"]})

    assert stale.status_code == 404
    assert fresh.json() == {"status": "confirmed"}
    [(password_hash,)] = registration.sql("SELECT password_hash FROM registration.users")
    hasher = PasswordHasher()
    assert await hasher.verify(password_hash, "the owner's own secret")
    assert not await hasher.verify(password_hash, VALID["password"])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"token": "A" * 43}, 404),
        ({"token": "not a token!"}, 400),
        ({"token": "x" * 500}, 400),
        ({"token": 12345}, 422),
        ({}, 422),
    ],
)
async def test_unknown_or_malformed_tokens_are_refused(
    client: httpx.AsyncClient, registration: RegistrationService, body: object, status: int
) -> None:
    response = await client.post("/confirmations", json=body)

    assert response.status_code == status
    assert response.json()["error"]["message"]
