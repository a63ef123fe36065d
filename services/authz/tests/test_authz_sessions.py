"""Refresh tokens: rotation, reuse detection, logout, log out everywhere, password change."""

import asyncio
import hashlib
from collections.abc import Callable

import httpx
import jwt

from .conftest import CONFIRMED, OTHER, Authz, login


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/token/refresh", json={"refresh_token": token})


async def test_login_gives_an_opaque_refresh_token_stored_only_as_a_hash(
    client: httpx.AsyncClient, authz: Authz
) -> None:
    body = (await login(client, "ok@example.com")).json()

    token = body["refresh_token"]
    assert len(token) >= 43
    assert body["refresh_expires_in"] == 14 * 24 * 3600
    [(stored,)] = authz.sql("SELECT token_hash FROM authz.refresh_tokens")
    assert bytes(stored) == hashlib.sha256(token.encode()).digest()
    assert token.encode() not in bytes(stored)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    [(family,)] = authz.sql("SELECT id::text FROM authz.session_families")
    assert claims["sid"] == family


async def test_every_refresh_rotates_the_token_and_keeps_the_session(
    client: httpx.AsyncClient,
) -> None:
    first = (await login(client, "ok@example.com")).json()

    second = await refresh(client, first["refresh_token"])
    assert second.status_code == 200
    third = await refresh(client, second.json()["refresh_token"])
    assert third.status_code == 200

    tokens = {first["refresh_token"], second.json()["refresh_token"], third.json()["refresh_token"]}
    assert len(tokens) == 3
    claims = jwt.decode(third.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == str(CONFIRMED)
    assert claims["roles"] == ["user"]
    assert third.headers["cache-control"] == "no-store"


async def test_reusing_a_rotated_token_revokes_the_whole_family(
    authz_factory: Callable[..., Authz],
) -> None:
    authz = authz_factory(refresh_reuse_grace_seconds=0)
    async with httpx.AsyncClient(base_url=authz.url, timeout=15) as client:
        stolen = (await login(client, "ok@example.com")).json()["refresh_token"]
        legitimate = (await refresh(client, stolen)).json()["refresh_token"]
        await asyncio.sleep(0.05)

        replay = await refresh(client, stolen)
        assert replay.status_code == 401
        assert replay.json()["error"]["code"] == "invalid_grant"
        # The descendant the legitimate owner holds is dead too: the family is revoked.
        after = await refresh(client, legitimate)
        assert after.status_code == 401
        assert authz.sql("SELECT revoked_reason FROM authz.session_families") == [("reuse",)]

        # Another login is a new family and is unaffected.
        fresh = (await login(client, "ok@example.com")).json()["refresh_token"]
        assert (await refresh(client, fresh)).status_code == 200


async def test_a_parallel_refresh_within_the_grace_window_keeps_the_session(
    client: httpx.AsyncClient, authz: Authz
) -> None:
    token = (await login(client, "ok@example.com")).json()["refresh_token"]

    first = await refresh(client, token)
    second = await refresh(client, token)  # a second tab, a moment later

    assert first.status_code == second.status_code == 200
    assert (await refresh(client, first.json()["refresh_token"])).status_code == 200
    assert (await refresh(client, second.json()["refresh_token"])).status_code == 200
    assert authz.sql("SELECT revoked_at FROM authz.session_families") == [(None,)]


async def test_logout_revokes_the_family_and_answers_the_same_for_any_token(
    client: httpx.AsyncClient, authz: Authz
) -> None:
    first = (await login(client, "ok@example.com")).json()["refresh_token"]
    current = (await refresh(client, first)).json()["refresh_token"]
    other_session = (await login(client, "ok@example.com")).json()["refresh_token"]

    # Logging out with an older token of the family still ends the session.
    response = await client.post("/logout", json={"refresh_token": first})
    unknown = await client.post("/logout", json={"refresh_token": "not-a-token"})

    assert response.status_code == unknown.status_code == 204
    assert (await refresh(client, current)).status_code == 401
    assert (await refresh(client, other_session)).status_code == 200


async def test_log_out_everywhere_ends_every_session_of_that_user_only(
    client: httpx.AsyncClient,
) -> None:
    laptop = (await login(client, "ok@example.com")).json()
    phone = (await login(client, "ok@example.com")).json()
    someone_else = (await login(client, "other@example.com")).json()

    response = await client.post(
        "/sessions/revoke-all", headers={"authorization": f"Bearer {laptop['access_token']}"}
    )

    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    assert (await refresh(client, laptop["refresh_token"])).status_code == 401
    assert (await refresh(client, phone["refresh_token"])).status_code == 401
    assert (await refresh(client, someone_else["refresh_token"])).status_code == 200
    anonymous = await client.post("/sessions/revoke-all")
    assert anonymous.status_code == 401


async def test_sessions_started_before_a_password_change_cannot_refresh(
    client: httpx.AsyncClient, authz: Authz
) -> None:
    before = (await login(client, "other@example.com")).json()["refresh_token"]
    authz.sql(
        "UPDATE registration.user_credentials SET password_changed_at = now() WHERE id = %s",
        (OTHER,),
    )
    await asyncio.sleep(0.01)
    after = (await login(client, "other@example.com")).json()["refresh_token"]

    assert (await refresh(client, before)).status_code == 401
    assert (await refresh(client, after)).status_code == 200


async def test_expired_and_unknown_refresh_tokens_are_refused(
    authz_factory: Callable[..., Authz],
) -> None:
    authz = authz_factory()
    async with httpx.AsyncClient(base_url=authz.url, timeout=15) as client:
        token = (await login(client, "ok@example.com")).json()["refresh_token"]
        authz.sql("UPDATE authz.refresh_tokens SET expires_at = now() - interval '1 second'")

        for presented in (token, "x" * 43, "", "y" * 10_000):
            response = await refresh(client, presented)
            assert response.status_code == 401, presented[:10]
            assert response.json()["error"]["code"] == "invalid_grant"
        malformed = await client.post("/token/refresh", json={"refresh_token": 42})
        assert malformed.status_code == 422
