"""Sessions, keys, brute force and authorization across the real services, and no secret in
any service's log along the way."""

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from alta_authz.keys import KeyStore
from alta_devstack.crm_standin import CrmStandin
from alta_devstack.jwt_attacks import ATTACKS, jwt_attacks
from alta_devstack.smtp_sink import SmtpSink
from alta_devstack.sqs import QueueUrls

from .stack import Stack, stack_environment
from .test_end_to_end import (
    confirm,
    confirmation_link,
    csrf_token,
    eventually,
    mail_to,
    submit,
)

PASSWORD = "c0rrect h0rse b4ttery st4ple"
WRONG_PASSWORD = "wr0ng p4ssword entirely"
ACCESS_TTL = 2
REUSE_GRACE = 1
# The verifiers' clock-skew leeway: an access token is refused this long after its exp.
LEEWAY = 5


@pytest.fixture
def auth_stack_factory(
    tmp_path: Path,
    database_url: str,
    sqs_endpoint: str,
    sqs_queues: dict[str, QueueUrls],
    smtp_sink: SmtpSink,
    crm_standin: CrmStandin,
) -> Iterator[Callable[..., Stack]]:
    """The stack with signing keys in a JWT_KEYS_DIR the test can read and rotate."""
    stacks: list[Stack] = []

    def start(**extra_env: str) -> Stack:
        log_dir = tmp_path / "logs"
        log_dir.mkdir()
        run_authz_command("rotate-keys", "--dir", str(tmp_path / "jwt-keys"))
        stack = Stack(env={}, log_dir=log_dir)
        stack.env = {
            **stack_environment(
                database_url=database_url,
                sqs_endpoint=sqs_endpoint,
                queues=sqs_queues,
                smtp_port=smtp_sink.port,
                crm_url=crm_standin.url,
                crm_token=crm_standin.api_token,
                ports=stack.ports,
            ),
            "JWT_KEYS_DIR": str(tmp_path / "jwt-keys"),
            "JWT_KEYS_RELOAD_SECONDS": "0.2",
            **extra_env,
        }
        stacks.append(stack)
        stack.start()
        return stack

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture
def auth_stack(auth_stack_factory: Callable[..., Stack]) -> Stack:
    return auth_stack_factory(
        ACCESS_TOKEN_TTL_SECONDS=str(ACCESS_TTL),
        REFRESH_REUSE_GRACE_SECONDS=str(REUSE_GRACE),
        LOGIN_PAIR_THRESHOLD="3",
    )


def run_authz_command(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "alta_authz", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def sign_up_and_confirm(stack: Stack, smtp_sink: SmtpSink, email: str, name: str) -> str:
    """Returns the confirmation link (a secret, to look for in the logs)."""
    with httpx.Client(base_url=stack.url("web_bff"), follow_redirects=True, timeout=20) as b:
        page = submit(b, "/", {"email": email, "name": name, "password": PASSWORD})
        assert "Check your inbox" in page.text
        [message] = eventually(lambda: mail_to(smtp_sink, email))
        link = confirmation_link(message)
        assert "Your email is confirmed" in confirm(b, link).text
    return link


def browser(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url("web_bff"), follow_redirects=True, timeout=20)


def refresh_directly(stack: Stack, token: str) -> int:
    response = httpx.post(
        f"{stack.url('authz')}/token/refresh", json={"refresh_token": token}, timeout=20
    )
    return response.status_code


def test_sessions_keys_brute_force_and_authorization_end_to_end(
    auth_stack: Stack, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    stack = auth_stack
    secrets: list[str] = [PASSWORD, WRONG_PASSWORD]
    ada, bob = "ada@example.com", "bob@example.com"
    for email, name in ((ada, "Ada"), (bob, "Bob")):
        link = sign_up_and_confirm(stack, smtp_sink, email, name)
        secrets += [link.split("token=")[1]]

    with browser(stack) as laptop, browser(stack) as phone:
        # Enumeration: a wrong password and an unknown account read the same.
        wrong = submit(laptop, "/login", {"email": ada, "password": WRONG_PASSWORD})
        unknown = submit(laptop, "/login", {"email": "nobody@example.com", "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401
        assert "Email or password is incorrect" in wrong.text
        assert "Email or password is incorrect" in unknown.text

        account = submit(laptop, "/login", {"email": ada, "password": PASSWORD})
        assert account.url.path == "/account"
        first_refresh = laptop.cookies["alta_refresh"]
        secrets += [laptop.cookies["alta_session"], first_refresh]

        # An error along the way (a forged token at registration) is logged without secrets.
        forged = httpx.get(
            f"{stack.url('registration')}/users/me",
            headers={"authorization": f"Bearer {laptop.cookies['alta_session']}x"},
        )
        assert forged.status_code == 401

        # Key rotation: published at once, and nobody is logged out.
        run_authz_command("rotate-keys", "--dir", str(tmp_path / "jwt-keys"))
        eventually(
            lambda: (
                len(httpx.get(f"{stack.url('authz')}/.well-known/jwks.json").json()["keys"]) == 2
            )
        )
        assert laptop.get("/account").url.path == "/account"

        # The access token runs out; the next page renews it transparently.
        time.sleep(ACCESS_TTL + LEEWAY + 1)
        renewed = laptop.get("/account")
        assert renewed.url.path == "/account"
        assert "Ada" in renewed.text
        current_refresh = laptop.cookies["alta_refresh"]
        assert current_refresh != first_refresh
        secrets += [laptop.cookies["alta_session"], current_refresh]

        # Reuse: someone replays the first (rotated) refresh token once the reuse grace (1 s
        # here; it spares two tabs renewing at once) has passed: the session is revoked.
        time.sleep(REUSE_GRACE + 0.5)
        assert refresh_directly(stack, first_refresh) == 401
        assert refresh_directly(stack, current_refresh) == 401

        # Log out everywhere: two devices, one click.
        submit(laptop, "/login", {"email": ada, "password": PASSWORD})
        on_phone = submit(phone, "/login", {"email": ada, "password": PASSWORD})
        assert on_phone.url.path == "/account"
        phone_refresh = phone.cookies["alta_refresh"]
        secrets += [phone_refresh, phone.cookies["alta_session"]]
        page = laptop.get("/account")
        done = laptop.post("/logout-everywhere", data={"csrf_token": csrf_token(page)})
        assert done.url.path == "/login"
        assert refresh_directly(stack, phone_refresh) == 401

        # Escalation at the services, with a real user token and the real policy.
        submit(laptop, "/login", {"email": bob, "password": PASSWORD})
        bob_token = laptop.cookies["alta_session"]
        secrets += [bob_token, laptop.cookies["alta_refresh"]]
        me = httpx.get(
            f"{stack.url('registration')}/users/me",
            headers={"authorization": f"Bearer {bob_token}"},
        )
        assert me.json()["email"] == bob
        for action, resource in (
            ("registrations:list", "registrations"),
            ("deliveries:read", "deliveries"),
            ("profile:read", f"user:{me.json()['id']}x"),
        ):
            decision = httpx.post(
                f"{stack.url('authz')}/authorize",
                json={"action": action, "resource": resource},
                headers={"authorization": f"Bearer {bob_token}"},
            )
            assert decision.json() == {"allowed": False}, action

        # The first admin is made with the command; a new login carries the role.
        out = run_authz_command("create-admin", bob, env=stack.env)
        assert "is now an admin" in out
        laptop.post("/logout", data={"csrf_token": csrf_token(laptop.get("/account"))})
        submit(laptop, "/login", {"email": bob, "password": PASSWORD})
        admin_token = laptop.cookies["alta_session"]
        secrets += [admin_token, laptop.cookies["alta_refresh"]]
        decision = httpx.post(
            f"{stack.url('authz')}/authorize",
            json={"action": "registrations:list", "resource": "registrations"},
            headers={"authorization": f"Bearer {admin_token}"},
        )
        assert decision.json() == {"allowed": True}

        # Brute force through the BFF: a clear message and Retry-After, for anyone.
        for _ in range(3):
            submit(phone, "/login", {"email": ada, "password": WRONG_PASSWORD})
        locked = submit(phone, "/login", {"email": ada, "password": PASSWORD})
        assert locked.status_code == 429
        assert "Too many failed login attempts" in locked.text
        assert int(locked.headers["retry-after"]) > 0

    logs = stack.logs()
    assert "session renewed" in logs
    assert "refresh token reused" in logs
    for secret in secrets:
        assert secret not in logs, secret[:12]


def log_in_at_authz(stack: Stack, email: str) -> str:
    response = httpx.post(
        f"{stack.url('authz')}/login", json={"email": email, "password": PASSWORD}, timeout=20
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def protected_endpoints(stack: Stack, other_user_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every endpoint of every service that needs a token: (method, url, request kwargs)."""
    lookup = {"json": {"user_ids": [other_user_id]}}
    return [
        ("GET", f"{stack.url('registration')}/users/me", {}),
        ("PATCH", f"{stack.url('registration')}/users/me", {"json": {"name": "Mallory"}}),
        (
            "POST",
            f"{stack.url('registration')}/users/me/password",
            {"json": {"current_password": PASSWORD, "new_password": "an0ther l0ng passw0rd"}},
        ),
        ("GET", f"{stack.url('registration')}/admin/registrations", {}),
        ("POST", f"{stack.url('email_sender')}/deliveries/lookup", lookup),
        ("POST", f"{stack.url('crm_integration')}/deliveries/lookup", lookup),
        (
            "POST",
            f"{stack.url('authz')}/authorize",
            {"json": {"action": "registrations:list", "resource": "registrations"}},
        ),
        ("POST", f"{stack.url('authz')}/sessions/revoke-all", {}),
    ]


def test_escalation_and_forged_tokens_are_refused_by_every_service(
    auth_stack_factory: Callable[..., Stack], smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    stack = auth_stack_factory()
    ada, bob, root = "ada@example.com", "bob@example.com", "root@example.com"
    for email, name in ((ada, "Ada"), (bob, "Bob"), (root, "Root")):
        sign_up_and_confirm(stack, smtp_sink, email, name)
    run_authz_command("create-admin", root, env=stack.env)
    ada_token, bob_token = log_in_at_authz(stack, ada), log_in_at_authz(stack, bob)
    admin_token = log_in_at_authz(stack, root)

    def call(method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, url, headers=headers, timeout=20, **kwargs)

    bob_id = call("GET", f"{stack.url('registration')}/users/me", bob_token).json()["id"]
    ada_id = call("GET", f"{stack.url('registration')}/users/me", ada_token).json()["id"]

    # Vertical: a user at admin endpoints, directly at each service.
    admin_only = [
        ("GET", f"{stack.url('registration')}/admin/registrations", {}),
        (
            "POST",
            f"{stack.url('email_sender')}/deliveries/lookup",
            {"json": {"user_ids": [bob_id]}},
        ),
        (
            "POST",
            f"{stack.url('crm_integration')}/deliveries/lookup",
            {"json": {"user_ids": [bob_id]}},
        ),
    ]
    for method, url, kwargs in admin_only:
        refused = call(method, url, ada_token, **kwargs)
        assert refused.status_code == 403, url
        assert bob not in refused.text
        assert call(method, url, admin_token, **kwargs).status_code == 200, url

    # Horizontal: Ada's token only ever reaches Ada's account; Bob's is untouched.
    renamed = call("PATCH", f"{stack.url('registration')}/users/me", ada_token, json={"name": "A"})
    assert renamed.status_code == 200
    assert renamed.json()["id"] == ada_id
    bob_now = call("GET", f"{stack.url('registration')}/users/me", bob_token).json()
    assert bob_now["name"] == "Bob"
    # A token claiming Bob's id, tampered or signed with another key, is rejected.
    key = KeyStore(tmp_path / "jwt-keys").ring.current
    attacks = jwt_attacks(
        key.private_key, kid=key.kid, issuer="alta-authz", audience="alta", subject=bob_id
    )
    for method, url, kwargs in protected_endpoints(stack, bob_id):
        for attack in ATTACKS:
            response = call(method, url, attacks[attack], **kwargs)
            assert response.status_code == 401, (url, attack)
            assert response.json()["error"]["code"] in ("invalid_token", "unauthorized")
        assert call(method, url, "", **kwargs).status_code == 401, url
    assert call("GET", f"{stack.url('registration')}/users/me", bob_token).json()["name"] == "Bob"
    assert log_in_at_authz(stack, bob)  # nobody's password was changed by the forged calls
