"""argon2id hashing: right parameters, bounded queue, no account needed to take the time."""

import asyncio

from alta_common.passwords import HashingOverloaded, PasswordHasher


async def test_hashes_are_argon2id_with_owasp_parameters_and_verify() -> None:
    hasher = PasswordHasher()
    password_hash = await hasher.hash("correct horse battery")

    assert password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await hasher.verify(password_hash, "correct horse battery")
    assert not await hasher.verify(password_hash, "wrong horse battery")
    assert not await hasher.verify(None, "correct horse battery")
    assert not await hasher.verify("not-a-hash", "correct horse battery")


async def test_a_burst_beyond_the_queue_is_refused_at_once() -> None:
    hasher = PasswordHasher(max_concurrent=1, max_waiting=2)

    results = await asyncio.gather(
        *(hasher.hash(f"password-{i}") for i in range(6)), return_exceptions=True
    )

    refused = [r for r in results if isinstance(r, HashingOverloaded)]
    assert len(refused) == 3
    assert all(isinstance(r, str) for r in results if r not in refused)
    assert refused[0].status_code == 503


async def test_the_event_loop_keeps_running_while_hashing() -> None:
    hasher = PasswordHasher(max_concurrent=2)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.gather(*(hasher.hash("a long password") for _ in range(4)))
    ticker.cancel()

    assert ticks > 10
