"""Sign-up: stored once in canonical form, both events relayed, bad input refused."""

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from alta_devstack.jwt_attacks import ATTACKS, jwt_attacks

from .conftest import TEST_KID, AuthzStandIn, RegistrationService, drain_queue

VALID = {"email": "Ada@Example.com", "name": "Ada Lovelace", "password": "correct horse battery"}


def counts(service: RegistrationService) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        service.sql(f"SELECT count(*) FROM registration.{table}")[0][0]  # noqa: S608 - fixed names
        for table in ("users", "confirmation_tokens", "outbox")
    )


async def test_sign_up_stores_a_pending_user_and_relays_both_events(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    response = await client.post("/registrations", json=VALID)

    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    [(email, name, status, password_hash)] = registration.sql(
        "SELECT email, name, status, password_hash FROM registration.users"
    )
    assert (email, name, status) == ("ada@example.com", "Ada Lovelace", "pending")
    assert password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    [email_event] = await drain_queue(sqs_endpoint, registration.queues["email"].url, expect=1)
    [crm_event] = await drain_queue(sqs_endpoint, registration.queues["crm"].url, expect=1)
    assert email_event["type"] == crm_event["type"] == "registration.created"
    assert email_event["email"] == "ada@example.com"
    assert email_event["confirmation_token"]
    # The CRM never needs the token, and the database keeps only its hash.
    assert crm_event["confirmation_token"] is None
    assert registration.sql("SELECT count(*) FROM registration.outbox") == [(0,)]
    assert response.headers["x-request-id"] == email_event["request_id"]


@pytest.mark.parametrize("variant", ["ADA@EXAMPLE.COM", " ada@example.com ", "ada@EXAMPLE.com"])
async def test_address_variants_never_make_a_second_account(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str, variant: str
) -> None:
    first = await client.post("/registrations", json=VALID)
    second = await client.post("/registrations", json={**VALID, "email": variant, "name": "Eve"})

    # The answer does not reveal that the address is taken ...
    assert (second.status_code, second.json()) == (first.status_code, first.json())
    assert registration.sql("SELECT email, name FROM registration.users") == [
        ("ada@example.com", "Ada Lovelace")
    ]
    # ... the still-pending owner gets a fresh link instead, and the CRM hears of one sign-up.
    events = await drain_queue(sqs_endpoint, registration.queues["email"].url, expect=2)
    assert sorted(e["type"] for e in events) == [
        "registration.confirmation_reissued",
        "registration.created",
    ]
    assert all(e["confirmation_token"] and e["confirmation_expires_at"] for e in events)
    crm = await drain_queue(sqs_endpoint, registration.queues["crm"].url, expect=1)
    assert len(crm) == 1


async def test_a_confirmed_owner_is_told_someone_tried_their_address(
    client: httpx.AsyncClient, registration: RegistrationService, sqs_endpoint: str
) -> None:
    await client.post("/registrations", json=VALID)
    registration.sql("UPDATE registration.users SET status = 'confirmed'")

    response = await client.post("/registrations", json={**VALID, "name": "Mallory"})

    assert (response.status_code, response.json()) == (202, {"status": "accepted"})
    events = await drain_queue(sqs_endpoint, registration.queues["email"].url, expect=2)
    duplicate = next(e for e in events if e["type"] == "registration.duplicate_attempt")
    assert duplicate["confirmation_token"] is None
    assert duplicate["name"] == "Ada Lovelace"


async def test_repeated_sign_ups_email_the_owner_at_most_once_per_interval(
    registration_factory: Callable[..., RegistrationService], sqs_endpoint: str
) -> None:
    service = registration_factory(account_notice_interval_seconds=300)
    async with httpx.AsyncClient(base_url=service.url, timeout=15) as client:
        answers = [(await client.post("/registrations", json=VALID)).json() for _ in range(4)]

    assert answers == [{"status": "accepted"}] * 4
    events = await drain_queue(sqs_endpoint, service.queues["email"].url, expect=1)
    assert [e["type"] for e in events] == ["registration.created"]


async def test_unicode_normalisation_variants_are_one_address(
    client: httpx.AsyncClient, registration: RegistrationService
) -> None:
    composed = "jos\u00e9@example.com"
    decomposed = "jose\u0301@example.com"
    await client.post("/registrations", json={**VALID, "email": composed})
    await client.post("/registrations", json={**VALID, "email": decomposed.upper()})

    assert registration.sql("SELECT email FROM registration.users") == [(composed,)]


async def test_a_unicode_domain_and_its_idna_form_are_one_address(
    client: httpx.AsyncClient, registration: RegistrationService
) -> None:
    await client.post("/registrations", json={**VALID, "email": "ada@B\u00fccher.example"})
    await client.post("/registrations", json={**VALID, "email": "ada@xn--bcher-kva.example"})

    assert registration.sql("SELECT email FROM registration.users") == [
        ("ada@xn--bcher-kva.example",)
    ]


LONG = "x" * 200


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({**VALID, "email": "not-an-email"}, 422, "invalid_input", "email"),
        ({**VALID, "email": f"{LONG}@{LONG}.com"}, 422, "invalid_input", "email"),
        ({**VALID, "name": ""}, 422, "invalid_input", "name"),
        ({**VALID, "name": "   "}, 422, "invalid_input", "name"),
        ({**VALID, "name": "n" * 101}, 422, "invalid_input", "name"),
        ({**VALID, "name": "Ada\u0000"}, 422, "invalid_input", "name"),
        ({**VALID, "name": "Ada\uffff"}, 422, "invalid_input", "name"),
        ({**VALID, "name": "Ada\ud800"}, 422, "invalid_input", "name"),
        ({**VALID, "password": "abcdefgh\ud800"}, 422, "invalid_input", "password"),
        ({**VALID, "password": "short"}, 422, "invalid_input", "password"),
        ({**VALID, "password": "p" * 129}, 422, "invalid_input", "password"),
        ({**VALID, "password": "Password123"}, 422, "invalid_input", "password"),
        ({"email": VALID["email"], "name": VALID["name"]}, 422, "invalid_input", "password"),
        ({**VALID, "email": 42}, 422, "invalid_input", "email"),
        ({**VALID, "name": None}, 422, "invalid_input", "name"),
    ],
)
async def test_invalid_fields_are_refused_with_a_message_per_field(
    client: httpx.AsyncClient,
    registration: RegistrationService,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    # json.dumps escapes lone surrogates as \\ud800, as a browser's JSON.stringify does.
    response = await client.post(
        "/registrations", content=json.dumps(body), headers={"content-type": "application/json"}
    )

    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["fields"][field]
    assert counts(registration) == (0, 0, 0)


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "malformed_json"),
        (b"[1, 2]", {"content-type": "application/json"}, 400, "malformed_json"),
        (b"\xff\xfe", {"content-type": "application/json"}, 400, "malformed_json"),
        (b"email=a@b.c", {"content-type": "application/x-www-form-urlencoded"}, 415, None),
        (b"{}", {}, 415, "unsupported_media_type"),
        (b'{"email": "' + b"a" * 20_000 + b'"}', {"content-type": "application/json"}, 413, None),
    ],
)
async def test_malformed_requests_get_a_clear_4xx_and_write_nothing(
    client: httpx.AsyncClient,
    registration: RegistrationService,
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    response = await client.post("/registrations", content=content, headers=headers)

    assert response.status_code == status
    assert response.json()["error"]["message"]
    if code:
        assert response.json()["error"]["code"] == code
    assert counts(registration) == (0, 0, 0)


async def test_chunked_body_over_the_limit_is_refused(
    client: httpx.AsyncClient, registration: RegistrationService
) -> None:
    async def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 1024

    response = await client.post(
        "/registrations", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert counts(registration) == (0, 0, 0)


def _token(key: Ed25519PrivateKey, subject: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": "alta-authz", "aud": "alta", "sub": subject, "iat": now, "exp": now + 60}
    return jwt.encode({**payload, **claims}, key, algorithm="EdDSA", headers={"kid": TEST_KID})


async def test_the_signed_in_user_reads_their_own_profile_only_with_a_valid_token(
    client: httpx.AsyncClient,
    registration: RegistrationService,
    signing_key: Ed25519PrivateKey,
    authz_standin: AuthzStandIn,
) -> None:
    await client.post("/registrations", json=VALID)
    [(user_id,)] = registration.sql("SELECT id FROM registration.users")

    me = await client.get(
        "/users/me", headers={"authorization": f"Bearer {_token(signing_key, str(user_id))}"}
    )
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"
    assert me.json()["status"] == "pending"
    assert authz_standin.questions == [("profile:read", f"user:{user_id}")]

    authz_standin.refuse_everything = True
    refused = await client.get(
        "/users/me", headers={"authorization": f"Bearer {_token(signing_key, str(user_id))}"}
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert "ada@example.com" not in refused.text

    expired = _token(signing_key, str(user_id), exp=int(time.time()) - 60)
    foreign = _token(Ed25519PrivateKey.generate(), str(user_id))
    for headers in (
        {},
        {"authorization": "Bearer garbage"},
        {"authorization": f"Bearer {expired}"},
        {"authorization": f"Bearer {foreign}"},
        {"authorization": f"Bearer {_token(signing_key, str(uuid.uuid4()), aud='other')}"},
    ):
        response = await client.get("/users/me", headers=headers)
        assert response.status_code == 401, headers


@pytest.mark.parametrize("attack", ATTACKS)
async def test_every_forged_or_broken_token_gets_401(
    client: httpx.AsyncClient,
    signing_key: Ed25519PrivateKey,
    authz_standin: AuthzStandIn,
    attack: str,
) -> None:
    token = jwt_attacks(signing_key, kid=TEST_KID, issuer="alta-authz", audience="alta")[attack]

    response = await client.get("/users/me", headers={"authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert authz_standin.questions == [], "a bad token never reaches the policy decision"
