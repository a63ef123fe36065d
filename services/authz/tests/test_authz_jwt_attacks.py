"""authz's protected endpoints answer every forged or broken token with 401."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from alta_authz.keys import KeyStore, rotate_keys
from alta_devstack.jwt_attacks import ATTACKS, jwt_attacks

from .conftest import CONFIRMED, Authz, login


@pytest.fixture
async def keyed_authz(
    authz_factory: Callable[..., Authz], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    rotate_keys(tmp_path)
    key = KeyStore(tmp_path).ring.current
    authz = authz_factory(jwt_keys_dir=tmp_path)
    attacks = jwt_attacks(
        key.private_key, kid=key.kid, issuer="alta-authz", audience="alta", subject=str(CONFIRMED)
    )
    async with httpx.AsyncClient(base_url=authz.url, timeout=15) as client:
        yield client, attacks


async def test_every_forged_or_broken_token_gets_401(
    keyed_authz: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, attacks = keyed_authz
    refresh_token = (await login(client, "ok@example.com")).json()["refresh_token"]

    for attack in ATTACKS:
        headers = {"authorization": f"Bearer {attacks[attack]}"}
        decision = await client.post(
            "/authorize",
            json={"action": "registrations:list", "resource": "registrations"},
            headers=headers,
        )
        revoke = await client.post("/sessions/revoke-all", headers=headers)

        assert decision.status_code == revoke.status_code == 401, attack
        assert decision.json()["error"]["code"] == "invalid_token", attack
        assert "WWW-Authenticate" in decision.headers, attack
    # Nothing was revoked by the forged requests.
    refreshed = await client.post("/token/refresh", json={"refresh_token": refresh_token})
    assert refreshed.status_code == 200
