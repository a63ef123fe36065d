"""argon2id password hashing off the event loop, with a cap on concurrent hashes."""

from collections.abc import Callable
from functools import partial
from typing import TypeVar

import anyio
import anyio.to_thread
from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError

from alta_common.errors import ApiError

T = TypeVar("T")


class HashingOverloaded(ApiError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "overloaded",
            "We are busy right now; try again in a moment.",
            headers={"Retry-After": "2"},
        )


class PasswordHasher:
    """OWASP's argon2id parameters (m=19 MiB, t=2, p=1).

    Each hash takes 19 MiB and a core for tens of milliseconds, so hashes run in worker threads
    (argon2 releases the GIL) and at most `max_concurrent` at once: memory stays bounded and the
    event loop keeps serving while a burst of sign-ups waits its turn. Past `max_waiting`
    queued hashes the answer is an immediate 503: waiting longer than the caller's timeout would
    only do work nobody receives.
    """

    def __init__(self, *, max_concurrent: int = 4, max_waiting: int = 64) -> None:
        self._hasher = Argon2Hasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self._limiter = anyio.CapacityLimiter(max_concurrent)
        self._max_pending = max_concurrent + max_waiting
        self._pending = 0
        # Verified when the account does not exist, so a miss takes as long as a wrong password.
        self._dummy_hash = self._hasher.hash("not-a-real-password-for-timing")

    async def _run(self, work: Callable[[], T]) -> T:
        if self._pending >= self._max_pending:
            raise HashingOverloaded
        self._pending += 1
        try:
            return await anyio.to_thread.run_sync(work, limiter=self._limiter)
        finally:
            self._pending -= 1

    async def hash(self, password: str) -> str:
        return await self._run(partial(self._hasher.hash, password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        matches = await self._run(
            partial(self._verify, password_hash or self._dummy_hash, password)
        )
        return matches and password_hash is not None

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
