"""The BFF app, lifespan running, with registration and authz faked under its HTTP client."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from alta_web_bff.app import create_app
from alta_web_bff.settings import Settings

from .web_bff_support import (
    AUTHZ_URL,
    PUBLIC_URL,
    REGISTRATION_URL,
    ClientFactory,
    FakeBackends,
    SigningKey,
)


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def backends(signing_key: SigningKey) -> FakeBackends:
    return FakeBackends(signing_key)


@pytest.fixture
async def client_factory(backends: FakeBackends) -> AsyncIterator[ClientFactory]:
    """Starts the app with settings overridden per test; a browser-like client talks to it."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> httpx.AsyncClient:
            defaults: dict[str, Any] = {
                "app_env": "test",
                "public_url": PUBLIC_URL,
                "registration_url": REGISTRATION_URL,
                "authz_url": AUTHZ_URL,
            }
            settings = Settings(**{**defaults, **overrides})
            app = create_app(settings, backend_transport=httpx.MockTransport(backends.handle))
            await stack.enter_async_context(app.router.lifespan_context(app))
            return await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=settings.public_url
                )
            )

        yield start


@pytest.fixture
async def client(client_factory: ClientFactory) -> httpx.AsyncClient:
    return await client_factory()
