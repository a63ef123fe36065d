"""Resend confirmation, password reset, change name and change password."""

import hashlib
import time
import uuid
from typing import Any

import httpx
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .conftest import TEST_KID, RegistrationService, drain_queue

VALID = {"email": "ada@example.com", "name": "Ada Lovelace", "password": "a long passphrase"}


def bearer(key: Ed25519PrivateKey, subject: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": "alta-authz", "aud": "alta", "sub": subject, "iat": now, "exp": now + 60}
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": TEST_KID})
    return {"authorization": f"Bearer {token}"}


async def emails(registration: RegistrationService, sqs_endpoint: str, expect: int) -> list[Any]:
    return await drain_queue(sqs_endpoint, registration.queues["email"].url, expect=expect)


async def confirmed_user(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> str:
    await client.post("/registrations", json=VALID)
    [created] = await emails(registration, sqs_endpoint, 1)
    await client.post("/confirmations", json={"token": created["confirmation_token"]})
    return str(created["user_id"])


def password_matches(registration: RegistrationService, password: str) -> bool:
    [(stored,)] = registration.sql("SELECT password_hash FROM registration.users")
    try:
        return PasswordHasher().verify(stored, password)
    except VerificationError:
        return False


async def test_resend_sends_a_new_link_and_the_old_one_stops_working(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    await client.post("/registrations", json=VALID)
    [created] = await emails(registration, sqs_endpoint, 1)

    response = await client.post("/confirmations/resend", json={"email": " ADA@example.com "})

    assert (response.status_code, response.json()) == (202, {"status": "accepted"})
    [resent] = await emails(registration, sqs_endpoint, 1)
    assert resent["type"] == "registration.confirmation_reissued"
    old = await client.post("/confirmations", json={"token": created["confirmation_token"]})
    assert old.status_code == 404
    new = await client.post("/confirmations", json={"token": resent["confirmation_token"]})
    assert new.json() == {"status": "confirmed"}


async def test_resend_is_throttled_per_address_and_says_the_same_for_everyone(
    registration_factory: Any, sqs_endpoint: str
) -> None:
    registration: RegistrationService = registration_factory(account_notice_interval_seconds=3600)
    async with httpx.AsyncClient(base_url=registration.url, timeout=15) as http:
        await http.post("/registrations", json=VALID)
        await emails(registration, sqs_endpoint, 1)
        registration.sql("UPDATE registration.users SET last_notice_at = NULL")

        answers = [
            await http.post("/confirmations/resend", json={"email": address})
            for address in (VALID["email"], VALID["email"], VALID["email"], "nobody@example.com")
        ]

    assert {(a.status_code, a.text) for a in answers} == {(202, '{"status":"accepted"}')}
    resent = await emails(registration, sqs_endpoint, 1)
    assert [e["type"] for e in resent] == ["registration.confirmation_reissued"]


async def test_resend_for_a_confirmed_account_sends_nothing(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    await confirmed_user(client, registration, sqs_endpoint)

    response = await client.post("/confirmations/resend", json={"email": VALID["email"]})

    assert response.status_code == 202
    assert await emails(registration, sqs_endpoint, 0) == []


async def test_a_reset_link_sets_a_new_password_once_and_revokes_sessions(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    await confirmed_user(client, registration, sqs_endpoint)

    requested = await client.post("/password-resets", json={"email": VALID["email"]})
    [reset_email] = await emails(registration, sqs_endpoint, 1)
    token = reset_email["password_reset_token"]
    check = await client.post("/password-resets/check", json={"token": token})
    done = await client.post(
        "/password-resets/complete", json={"token": token, "password": "a brand new secret"}
    )
    again = await client.post(
        "/password-resets/complete", json={"token": token, "password": "an attacker's choice"}
    )

    assert requested.status_code == 202
    assert reset_email["type"] == "registration.password_reset_requested"
    # Only the SHA-256 of the link's token is stored.
    assert registration.sql("SELECT token_hash FROM registration.password_reset_tokens") == [
        (hashlib.sha256(token.encode()).digest(),)
    ]
    assert (check.status_code, done.status_code) == (200, 200)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "token_used")
    assert password_matches(registration, "a brand new secret")
    [(changed_at,)] = registration.sql(
        "SELECT password_changed_at FROM registration.user_credentials"
    )
    assert changed_at is not None
    [notice] = await emails(registration, sqs_endpoint, 1)
    assert notice["type"] == "registration.password_changed"


async def test_a_new_reset_link_replaces_the_older_one(
    registration_factory: Any, sqs_endpoint: str
) -> None:
    registration: RegistrationService = registration_factory(password_reset_interval_seconds=0)
    async with httpx.AsyncClient(base_url=registration.url, timeout=15) as http:
        await confirmed_user(http, registration, sqs_endpoint)
        await http.post("/password-resets", json={"email": VALID["email"]})
        await http.post("/password-resets", json={"email": VALID["email"]})
        first, second = await emails(registration, sqs_endpoint, 2)

        stale = await http.post(
            "/password-resets/complete",
            json={"token": first["password_reset_token"], "password": "a brand new secret"},
        )
        fresh = await http.post(
            "/password-resets/complete",
            json={"token": second["password_reset_token"], "password": "a brand new secret"},
        )

    assert stale.status_code == 404
    assert fresh.status_code == 200


async def test_reset_requests_answer_alike_and_are_throttled_per_account(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    await confirmed_user(client, registration, sqs_endpoint)

    answers = [
        await client.post("/password-resets", json={"email": address})
        for address in (VALID["email"], VALID["email"], "nobody@example.com")
    ]

    assert {(a.status_code, a.text) for a in answers} == {(202, '{"status":"accepted"}')}
    sent = await emails(registration, sqs_endpoint, 1)
    assert [e["type"] for e in sent] == ["registration.password_reset_requested"]


async def test_an_expired_or_unknown_reset_link_changes_nothing(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    await confirmed_user(client, registration, sqs_endpoint)
    await client.post("/password-resets", json={"email": VALID["email"]})
    [reset_email] = await emails(registration, sqs_endpoint, 1)
    registration.sql(
        "UPDATE registration.password_reset_tokens SET expires_at = now() - interval '1 second'"
    )

    expired = await client.post(
        "/password-resets/complete",
        json={"token": reset_email["password_reset_token"], "password": "a brand new secret"},
    )
    unknown = await client.post(
        "/password-resets/complete", json={"token": "x" * 43, "password": "a brand new secret"}
    )
    malformed = await client.post("/password-resets/complete", json={"token": 5})
    weak = await client.post(
        "/password-resets/complete",
        json={"token": reset_email["password_reset_token"], "password": "password"},
    )

    assert [r.status_code for r in (expired, unknown, malformed, weak)] == [410, 404, 400, 422]
    assert password_matches(registration, VALID["password"])
    assert registration.sql("SELECT password_changed_at FROM registration.users") == [(None,)]


async def test_a_reset_confirms_a_pending_account(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    """Opening the reset email proves the address as well as a confirmation link does."""
    await client.post("/registrations", json=VALID)
    await emails(registration, sqs_endpoint, 1)
    await client.post("/password-resets", json={"email": VALID["email"]})
    [reset_email] = await emails(registration, sqs_endpoint, 1)

    await client.post(
        "/password-resets/complete",
        json={"token": reset_email["password_reset_token"], "password": "a brand new secret"},
    )

    assert registration.sql("SELECT status FROM registration.users") == [("confirmed",)]
    crm = await drain_queue(sqs_endpoint, registration.queues["crm"].url, expect=2)
    assert sorted(e["type"] for e in crm) == ["registration.confirmed", "registration.created"]


async def test_change_name_and_password_need_the_owner_and_the_current_password(
    client: httpx.AsyncClient,
    registration: RegistrationService,
    sqs_endpoint: str,
    signing_key: Ed25519PrivateKey,
) -> None:
    user_id = await confirmed_user(client, registration, sqs_endpoint)
    auth = bearer(signing_key, user_id)

    renamed = await client.patch("/users/me", json={"name": " Countess "}, headers=auth)
    blank = await client.patch("/users/me", json={"name": "  "}, headers=auth)
    anonymous = await client.patch("/users/me", json={"name": "Mallory"})
    wrong = await client.post(
        "/users/me/password",
        json={"current_password": "not it", "new_password": "a brand new secret"},
        headers=auth,
    )
    weak = await client.post(
        "/users/me/password",
        json={"current_password": VALID["password"], "new_password": "short"},
        headers=auth,
    )
    assert registration.sql("SELECT password_changed_at FROM registration.users") == [(None,)]
    changed = await client.post(
        "/users/me/password",
        json={"current_password": VALID["password"], "new_password": "a brand new secret"},
        headers=auth,
    )
    stranger = await client.patch(
        "/users/me", json={"name": "Nobody"}, headers=bearer(signing_key, str(uuid.uuid4()))
    )

    assert (renamed.status_code, renamed.json()["name"]) == (200, "Countess")
    assert (blank.status_code, anonymous.status_code) == (422, 401)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "wrong_password")
    assert (weak.status_code, list(weak.json()["error"]["fields"])) == (422, ["new_password"])
    assert changed.status_code == 200
    assert stranger.status_code == 404
    assert registration.sql("SELECT name FROM registration.users") == [("Countess",)]
    assert password_matches(registration, "a brand new secret")
    [(changed_at,)] = registration.sql("SELECT password_changed_at FROM registration.users")
    assert changed_at is not None
    [notice] = await emails(registration, sqs_endpoint, 1)
    assert notice["type"] == "registration.password_changed"


def admin_bearer(key: Ed25519PrivateKey) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": "alta-authz",
        "aud": "alta",
        "sub": str(uuid.uuid4()),
        "roles": ["admin"],
        "iat": now,
        "exp": now + 60,
    }
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": TEST_KID})
    return {"authorization": f"Bearer {token}"}


async def test_the_admin_list_is_searchable_paginated_and_admin_only(
    client: httpx.AsyncClient,
    registration: RegistrationService,
    sqs_endpoint: str,
    signing_key: Ed25519PrivateKey,
) -> None:
    # "%" in a search is a character, not a wildcard: only Bob's name has "1%".
    for index, name in enumerate(("Ann 1x", "Bob 1%", "Cy")):
        await client.post(
            "/registrations", json={**VALID, "email": f"user{index}@example.com", "name": name}
        )
    [(user_id,)] = registration.sql(
        "SELECT id FROM registration.users WHERE email = 'user0@example.com'"
    )
    admin = admin_bearer(signing_key)

    first = await client.get("/admin/registrations", params={"per_page": 2}, headers=admin)
    second = await client.get(
        "/admin/registrations", params={"per_page": 2, "page": 2}, headers=admin
    )
    found = await client.get("/admin/registrations", params={"q": "USER1@"}, headers=admin)
    literal = await client.get("/admin/registrations", params={"q": "1%"}, headers=admin)
    by_user = await client.get("/admin/registrations", headers=bearer(signing_key, str(user_id)))
    anonymous = await client.get("/admin/registrations")
    bad_size = await client.get("/admin/registrations", params={"per_page": 0}, headers=admin)
    bad_page = await client.get("/admin/registrations", params={"page": "x"}, headers=admin)

    assert first.status_code == 200
    assert first.json()["total"] == 3
    emails_listed = [u["email"] for u in first.json()["items"] + second.json()["items"]]
    assert emails_listed == ["user2@example.com", "user1@example.com", "user0@example.com"]
    assert [u["email"] for u in found.json()["items"]] == ["user1@example.com"]
    assert [u["email"] for u in literal.json()["items"]] == ["user1@example.com"]
    assert found.json()["items"][0]["status"] == "pending"
    assert (by_user.status_code, anonymous.status_code) == (403, 401)
    assert "example.com" not in by_user.text
    assert (bad_size.status_code, bad_page.status_code) == (422, 422)
