"""Resend, forgot and reset password, change name and password, and the admin console."""

import json

import httpx
import pytest

from .test_web_bff_account import ME, USER, serve_user
from .web_bff_support import REGISTRATION_URL, FakeBackends, SigningKey, csrf_token, error

RESEND = f"{REGISTRATION_URL}/confirmations/resend"
RESETS = f"{REGISTRATION_URL}/password-resets"
RESET_CHECK = f"{REGISTRATION_URL}/password-resets/check"
RESET_COMPLETE = f"{REGISTRATION_URL}/password-resets/complete"
PASSWORD = f"{REGISTRATION_URL}/users/me/password"
ADMIN_LIST = f"{REGISTRATION_URL}/admin/registrations?q=&page=1&per_page=25"
EMAIL_LOOKUP = "http://127.0.0.1:8003/deliveries/lookup"
CRM_LOOKUP = "http://127.0.0.1:8004/deliveries/lookup"
ACCEPTED = httpx.Response(202, json={"status": "accepted"})


@pytest.mark.parametrize(
    ("page", "backend"), [("/resend-confirmation", RESEND), ("/forgot-password", RESETS)]
)
async def test_email_requests_answer_alike_and_pass_the_address_on(
    client: httpx.AsyncClient, backends: FakeBackends, page: str, backend: str
) -> None:
    backends.answer("POST", backend, ACCEPTED)
    csrf = await csrf_token(client, page)

    response = await client.post(page, data={"csrf_token": csrf, "email": " ada@example.com "})
    shown = await client.get(response.headers["location"])

    assert response.status_code == 303
    assert "If an account" in shown.text
    [sent] = backends.sent("POST", backend)
    assert json.loads(sent.content) == {"email": "ada@example.com"}


async def test_an_email_request_without_an_address_asks_for_one_and_sends_nothing(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    csrf = await csrf_token(client, "/forgot-password")

    response = await client.post("/forgot-password", data={"csrf_token": csrf, "email": ""})

    assert response.status_code == 422
    assert "Enter your email address." in response.text
    assert backends.sent("POST", RESETS) == []


@pytest.mark.parametrize(
    ("answer", "status", "text"),
    [
        (error(409, "token_used"), 409, "already used"),
        (error(410, "token_expired"), 410, "has expired"),
        (error(404, "invalid_token"), 400, "not valid"),
    ],
)
async def test_a_reset_link_that_cannot_be_used_says_why(
    client: httpx.AsyncClient,
    backends: FakeBackends,
    answer: httpx.Response,
    status: int,
    text: str,
) -> None:
    backends.answer("POST", RESET_CHECK, answer)

    response = await client.get("/reset-password", params={"token": "tok-1"})

    assert response.status_code == status
    assert text in response.text
    assert 'href="/forgot-password"' in response.text


async def test_a_usable_reset_link_sets_the_new_password_and_ends_the_session(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    backends.answer("POST", RESET_CHECK, httpx.Response(200, json={"status": "usable"}))
    backends.answer("POST", RESET_COMPLETE, httpx.Response(200, json={"status": "reset"}))
    csrf = await csrf_token(client, "/reset-password?token=tok-1")
    assert backends.sent("POST", RESET_COMPLETE) == []

    response = await client.post(
        "/reset-password",
        data={"csrf_token": csrf, "token": "tok-1", "password": "a brand new secret"},
    )

    assert response.status_code == 200
    assert "Your password is changed" in response.text
    [sent] = backends.sent("POST", RESET_COMPLETE)
    assert json.loads(sent.content) == {"token": "tok-1", "password": "a brand new secret"}


async def test_a_reused_reset_link_is_refused_with_a_clear_message(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    backends.answer("POST", RESET_CHECK, httpx.Response(200, json={"status": "usable"}))
    backends.answer("POST", RESET_COMPLETE, error(409, "token_used"))
    csrf = await csrf_token(client, "/reset-password?token=tok-1")

    response = await client.post(
        "/reset-password",
        data={"csrf_token": csrf, "token": "tok-1", "password": "a brand new secret"},
    )

    assert response.status_code == 409
    assert "This link was already used" in response.text


async def test_change_name_and_password_from_the_account_page(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    access_token = signing_key.sign(sub=USER["id"])
    serve_user(backends, access_token, USER)
    backends.answer("PATCH", ME, httpx.Response(200, json={**USER, "name": "Countess"}))
    backends.answer(
        "POST",
        PASSWORD,
        error(
            403,
            "wrong_password",
            fields={"current_password": "The current password is not correct."},
        ),
    )
    client.cookies.set("alta_session", access_token)
    csrf = await csrf_token(client, "/account")

    renamed = await client.post("/account/name", data={"csrf_token": csrf, "name": "Countess"})
    wrong = await client.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": "nope", "new_password": "a new secret"},
    )
    backends.answer("POST", PASSWORD, httpx.Response(200, json={"status": "changed"}))
    changed = await client.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": "right", "new_password": "a new secret"},
    )

    assert (renamed.status_code, "Your name is saved." in renamed.text) == (200, True)
    assert "Hello, Countess" in renamed.text
    assert [json.loads(r.content) for r in backends.sent("PATCH", ME)] == [{"name": "Countess"}]
    assert wrong.status_code == 422
    assert "The current password is not correct." in wrong.text
    assert changed.status_code == 200
    assert "Every device that was signed in has been logged out" in changed.text
    assert 'alta_session=""' in changed.headers["set-cookie"]


async def test_account_changes_need_a_session(
    client: httpx.AsyncClient, backends: FakeBackends
) -> None:
    csrf = await csrf_token(client, "/login")

    response = await client.post("/account/name", data={"csrf_token": csrf, "name": "Mallory"})

    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert backends.sent("PATCH", ME) == []


def serve_admin_list(backends: FakeBackends) -> None:
    backends.answer(
        "GET",
        ADMIN_LIST,
        httpx.Response(
            200,
            json={
                "items": [
                    {**USER, "status": "confirmed"},
                    {
                        **USER,
                        "id": "0b6d7d54-3c4f-4a37-9a57-6c2c7c4c2f11",
                        "email": "bob@example.com",
                        "name": "Bob <b>",
                        "status": "pending",
                        "confirmed_at": None,
                    },
                ],
                "total": 2,
                "page": 1,
                "per_page": 25,
            },
        ),
    )


async def test_the_admin_console_lists_sign_ups_with_their_delivery_state(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    serve_admin_list(backends)
    backends.answer(
        "POST",
        EMAIL_LOOKUP,
        httpx.Response(
            200,
            json={"deliveries": {USER["id"]: {"confirmation_sent_at": "2025-12-03T10:16:00Z"}}},
        ),
    )
    backends.answer("POST", CRM_LOOKUP, error(503, "unavailable"))
    client.cookies.set("alta_session", signing_key.sign(roles=["admin"]))

    response = await client.get("/admin/registrations")

    assert response.status_code == 200
    assert "ada@example.com" in response.text
    assert "Bob &lt;b&gt;" in response.text
    assert "2025-12-03 10:16 UTC" in response.text
    assert "not yet" in response.text
    assert "unknown (CRM service unavailable)" in response.text
    [lookup] = backends.sent("POST", EMAIL_LOOKUP)
    assert json.loads(lookup.content) == {
        "user_ids": [USER["id"], "0b6d7d54-3c4f-4a37-9a57-6c2c7c4c2f11"]
    }


async def test_the_admin_console_refuses_a_user_and_sends_a_visitor_to_login(
    client: httpx.AsyncClient, backends: FakeBackends, signing_key: SigningKey
) -> None:
    backends.answer("GET", ADMIN_LIST, error(403, "forbidden"))

    anonymous = await client.get("/admin/registrations")
    client.cookies.set("alta_session", signing_key.sign())
    user = await client.get("/admin/registrations")

    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login")
    assert user.status_code == 403
    assert "Administrators only" in user.text
    assert backends.sent("POST", EMAIL_LOOKUP) == []
