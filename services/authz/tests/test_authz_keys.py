"""Signing keys from JWT_KEYS_DIR: rotation without logging anyone out, and the commands."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from alta_authz.keys import CURRENT_FILE, PREVIOUS_FILE, KeyStore, rotate_keys
from alta_common.tokens import JwtVerifier

from .conftest import CONFIRMED, Authz, login


def run_command(*args: str, database_url: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APP_ENV": "test", "DATABASE_URL": database_url}
    return subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "alta_authz", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def jwks_kids(client: httpx.AsyncClient) -> list[str]:
    return [key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]]


async def wait_for_kids(client: httpx.AsyncClient, count: int, first: str | None = None) -> None:
    for _ in range(100):
        kids = await jwks_kids(client)
        if len(kids) == count and (first is None or kids[0] == first):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the JWKS did not change: {kids}")


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def test_a_rotation_is_picked_up_without_logging_anyone_out(
    authz_factory: Callable[..., Authz], tmp_path: Path
) -> None:
    first_kid = rotate_keys(tmp_path)
    authz = authz_factory(
        jwt_keys_dir=tmp_path, jwt_keys_reload_seconds=0.1, jwt_key_activation_seconds=1.5
    )
    async with httpx.AsyncClient(base_url=authz.url, timeout=15) as client:
        session = (await login(client, "ok@example.com")).json()
        assert kid_of(session["access_token"]) == first_kid

        rotated = run_command("rotate-keys", "--dir", str(tmp_path))
        assert rotated.returncode == 0, rotated.stderr
        second_kid = KeyStore(tmp_path).ring.current.kid
        assert second_kid in rotated.stdout
        await wait_for_kids(client, 2, first=second_kid)

        verifier = JwtVerifier(
            client,
            jwks_url=f"{authz.url}/.well-known/jwks.json",
            issuer="alta-authz",
            audience="alta",
        )
        # The token signed before the rotation still verifies, at services and at authz.
        assert (await verifier.verify(session["access_token"])).subject == str(CONFIRMED)
        decision = await client.post(
            "/authorize",
            json={"action": "profile:read", "resource": f"user:{CONFIRMED}"},
            headers={"authorization": f"Bearer {session['access_token']}"},
        )
        assert decision.json() == {"allowed": True}

        # Until every verifier may have refetched the JWKS, the previous key keeps signing.
        early = (
            await client.post("/token/refresh", json={"refresh_token": session["refresh_token"]})
        ).json()
        assert kid_of(early["access_token"]) == first_kid
        await asyncio.sleep(1.6)
        late = (
            await client.post("/token/refresh", json={"refresh_token": early["refresh_token"]})
        ).json()
        assert kid_of(late["access_token"]) == second_kid
        assert (await verifier.verify(late["access_token"])).subject == str(CONFIRMED)

        # A second rotation drops the first key: its tokens stop verifying, but the session
        # (the refresh token) is independent of the keys and carries on.
        assert run_command("rotate-keys", "--dir", str(tmp_path)).returncode == 0
        await wait_for_kids(client, 2)
        assert first_kid not in await jwks_kids(client)
        again = await client.post("/token/refresh", json={"refresh_token": late["refresh_token"]})
        assert again.status_code == 200


async def test_a_broken_key_update_keeps_the_keys_in_use(tmp_path: Path) -> None:
    rotate_keys(tmp_path)
    store = KeyStore(tmp_path)
    kids = [key["kid"] for key in store.ring.jwks()["keys"]]

    (tmp_path / CURRENT_FILE).write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")

    assert store.reload() is False
    assert [key["kid"] for key in store.ring.jwks()["keys"]] == kids


def test_rotate_keys_moves_current_to_previous_with_private_permissions(tmp_path: Path) -> None:
    first = rotate_keys(tmp_path)
    second = rotate_keys(tmp_path)

    store = KeyStore(tmp_path)
    assert store.ring.current.kid == second
    assert store.ring.previous is not None
    assert store.ring.previous.kid == first
    for name in (CURRENT_FILE, PREVIOUS_FILE):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0


def test_keys_that_are_not_ed25519_are_refused(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / CURRENT_FILE).write_bytes(pem)

    with pytest.raises(ValueError, match="Ed25519"):
        KeyStore(tmp_path)
    with pytest.raises(ValueError, match="Ed25519"):
        rotate_keys(tmp_path)


async def test_create_admin_promotes_an_existing_account(authz: Authz) -> None:
    promoted = run_command("create-admin", "OK@example.com", database_url=authz.database_url)
    assert promoted.returncode == 0, promoted.stderr
    assert "is now an admin" in promoted.stdout
    again = run_command("create-admin", "ok@example.com", database_url=authz.database_url)
    assert "was already an admin" in again.stdout

    async with httpx.AsyncClient(base_url=authz.url, timeout=15) as client:
        token = (await login(client, "ok@example.com")).json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["roles"] == ["admin", "user"]

    missing = run_command("create-admin", "nobody@example.com", database_url=authz.database_url)
    assert missing.returncode == 1
    assert "no account" in missing.stderr
    invalid = run_command("create-admin", "not-an-email", database_url=authz.database_url)
    assert invalid.returncode == 2
