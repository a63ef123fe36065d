"""Service defaults: the Starlette app every service builds, with the same middleware and health."""

from collections.abc import Sequence
from typing import Any

import psycopg
import uvicorn
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import Lifespan
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from alta_common.errors import database_unavailable_handler, http_exception_handler
from alta_common.health import health_routes
from alta_common.request_context import RequestContextMiddleware
from alta_common.settings import ServiceSettings


def create_service_app(
    settings: ServiceSettings,
    *,
    routes: Sequence[BaseRoute],
    lifespan: Lifespan[Any] | None = None,
    exception_handlers: dict[Any, Any] | None = None,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    handlers: dict[Any, Any] = {
        HTTPException: http_exception_handler,
        psycopg.OperationalError: database_unavailable_handler,
        PoolTimeout: database_unavailable_handler,
    }
    handlers.update(exception_handlers or {})
    app = Starlette(
        routes=[*health_routes, *routes],
        lifespan=lifespan,
        exception_handlers=handlers,
        middleware=[
            # First, so the request log, rate limits and cookies see the real client and scheme.
            Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_networks),
            Middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes),
            *middleware,
        ],
    )
    app.state.settings = settings
    return app


def serve(factory: str, settings: ServiceSettings) -> None:
    """Run one uvicorn worker; the orchestrator scales by adding pods, not workers."""
    uvicorn.run(
        factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # The app applies TRUSTED_PROXIES itself (create_service_app); uvicorn's own default
        # would trust forwarded headers from 127.0.0.1.
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.graceful_timeout_seconds),
    )
