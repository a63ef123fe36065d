"""argon2id password hashing off the event loop, with a cap on concurrent hashes."""

from functools import partial

import anyio
import anyio.to_thread
from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError


class PasswordHasher:
    """OWASP's argon2id parameters (m=19 MiB, t=2, p=1).

    Each hash takes 19 MiB and a core for tens of milliseconds, so hashes run in worker threads
    (argon2 releases the GIL) and at most `max_concurrent` at once: memory stays bounded and the
    event loop keeps serving while a burst of sign-ups waits its turn.
    """

    def __init__(self, *, max_concurrent: int = 4) -> None:
        self._hasher = Argon2Hasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self._limiter = anyio.CapacityLimiter(max_concurrent)
        # Verified when the account does not exist, so a miss takes as long as a wrong password.
        self._dummy_hash = self._hasher.hash("not-a-real-password-for-timing")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        verify = partial(self._verify, password_hash or self._dummy_hash, password)
        matches = await anyio.to_thread.run_sync(verify, limiter=self._limiter)
        return matches and password_hash is not None

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
