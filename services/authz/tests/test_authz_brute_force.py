"""Failed logins are throttled per account+IP, per account and per IP, without revealing
whether the account exists and without letting a stranger lock the owner out."""

import asyncio
from collections.abc import Callable

import httpx
import pytest

from .conftest import PASSWORD, Authz

WRONG = "not the password at all"


def client_at(authz: Authz, ip: str) -> httpx.AsyncClient:
    """A caller at `ip`, as the BFF (a trusted proxy here) reports it."""
    return httpx.AsyncClient(base_url=authz.url, timeout=15, headers={"x-forwarded-for": ip})


async def attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/login", json={"email": email, "password": password})


@pytest.fixture
def throttled_authz(authz_factory: Callable[..., Authz]) -> Authz:
    return authz_factory(
        trusted_proxies="127.0.0.1",
        login_pair_threshold=3,
        login_account_threshold=6,
        login_ip_threshold=8,
        login_lock_base_seconds=2,
        login_account_lock_max_seconds=3,
    )


async def test_repeated_failures_lock_with_a_growing_delay_and_success_resets(
    throttled_authz: Authz,
) -> None:
    async with client_at(throttled_authz, "203.0.113.7") as client:
        for _ in range(3):
            assert (await attempt(client, "ok@example.com", WRONG)).status_code == 401

        locked = await attempt(client, "ok@example.com", PASSWORD)
        assert locked.status_code == 429
        assert locked.json()["error"]["code"] == "too_many_attempts"
        assert 1 <= int(locked.headers["retry-after"]) <= 2

        await asyncio.sleep(2.1)
        assert (await attempt(client, "ok@example.com", WRONG)).status_code == 401
        longer = await attempt(client, "ok@example.com", WRONG)
        assert longer.status_code == 429
        assert int(longer.headers["retry-after"]) in (3, 4), "the second lock doubles"

        await asyncio.sleep(int(longer.headers["retry-after"]) + 0.1)
        assert (await attempt(client, "ok@example.com", PASSWORD)).status_code == 200
        # Success forgot the failures: three more are needed for another lock.
        for _ in range(2):
            assert (await attempt(client, "ok@example.com", WRONG)).status_code == 401
        assert (await attempt(client, "ok@example.com", PASSWORD)).status_code == 200


async def test_the_lock_looks_the_same_for_unknown_and_existing_accounts(
    throttled_authz: Authz,
) -> None:
    async with client_at(throttled_authz, "203.0.113.8") as client:
        answers = {}
        for email in ("ok@example.com", "nobody@example.com"):
            statuses = [(await attempt(client, email, WRONG)).status_code for _ in range(4)]
            last = await attempt(client, email, WRONG)
            answers[email] = (statuses, last.status_code, last.json())

    assert answers["ok@example.com"][0] == answers["nobody@example.com"][0] == [401] * 3 + [429]
    assert answers["ok@example.com"][1:] == answers["nobody@example.com"][1:]


async def test_an_attacker_elsewhere_cannot_lock_the_owner_out(throttled_authz: Authz) -> None:
    async with (
        client_at(throttled_authz, "198.51.100.1") as attacker,
        client_at(throttled_authz, "192.0.2.50") as owner,
    ):
        for _ in range(4):
            await attempt(attacker, "ok@example.com", WRONG)
        assert (await attempt(attacker, "ok@example.com", PASSWORD)).status_code == 429
        # The owner, from their own address, is not affected by the attacker's pair lock.
        assert (await attempt(owner, "ok@example.com", PASSWORD)).status_code == 200


async def test_a_distributed_attack_locks_the_account_only_briefly(throttled_authz: Authz) -> None:
    async with client_at(throttled_authz, "192.0.2.60") as owner:
        for n in range(8):
            async with client_at(throttled_authz, f"198.51.100.{10 + n}") as attacker:
                await attempt(attacker, "ok@example.com", WRONG)
        delayed = await attempt(owner, "ok@example.com", PASSWORD)
        assert delayed.status_code == 429
        assert int(delayed.headers["retry-after"]) <= 3, "the account lock is capped low"
        await asyncio.sleep(int(delayed.headers["retry-after"]) + 0.1)
        assert (await attempt(owner, "ok@example.com", PASSWORD)).status_code == 200


async def test_one_address_guessing_many_accounts_is_locked(throttled_authz: Authz) -> None:
    async with (
        client_at(throttled_authz, "198.51.100.99") as sprayer,
        client_at(throttled_authz, "192.0.2.70") as someone,
    ):
        for n in range(8):
            await attempt(sprayer, f"user{n}@example.com", WRONG)
        assert (await attempt(sprayer, "ok@example.com", PASSWORD)).status_code == 429
        assert (await attempt(someone, "ok@example.com", PASSWORD)).status_code == 200


async def test_forwarded_addresses_are_ignored_from_untrusted_callers(
    authz_factory: Callable[..., Authz],
) -> None:
    authz = authz_factory(login_pair_threshold=2, login_lock_base_seconds=30)
    for n in range(3):
        # A direct caller rotating X-Forwarded-For is still one address to authz.
        async with client_at(authz, f"198.51.100.{n}") as spoofer:
            await attempt(spoofer, "ok@example.com", WRONG)
    async with client_at(authz, "198.51.100.200") as spoofer:
        assert (await attempt(spoofer, "ok@example.com", PASSWORD)).status_code == 429
