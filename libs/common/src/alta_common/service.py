"""Service defaults: the Starlette app every service builds, with the same middleware and health."""

import math
from collections.abc import Sequence
from typing import Any

import psycopg
import uvicorn
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route
from starlette.types import Lifespan
from uvicorn.importer import import_from_string
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from alta_common.errors import database_unavailable_handler, http_exception_handler
from alta_common.health import health_routes
from alta_common.metrics import ServiceMetrics, metrics_endpoint
from alta_common.request_context import RequestContextMiddleware
from alta_common.settings import ServiceSettings
from alta_common.shutdown import Draining, DrainingServer


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
        # SQLSTATE 25006: the server became read-only (failover); the pool's check replaces
        # the connection, so a retry reaches a writable server.
        psycopg.errors.ReadOnlySqlTransaction: database_unavailable_handler,
        PoolTimeout: database_unavailable_handler,
    }
    handlers.update(exception_handlers or {})
    metrics = ServiceMetrics()
    app = Starlette(
        routes=[*health_routes, Route("/metrics", metrics_endpoint, methods=["GET"]), *routes],
        lifespan=lifespan,
        exception_handlers=handlers,
        middleware=[
            # First, so the request log, rate limits and cookies see the real client and scheme.
            Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_networks),
            Middleware(
                RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics
            ),
            *middleware,
        ],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    # Set at SIGTERM; /readyz fails from then on and background workers stop taking work.
    app.state.draining = Draining()
    return app


def serve(factory: str, settings: ServiceSettings) -> None:
    """Run one uvicorn worker; the orchestrator scales by adding pods, not workers.

    `factory` names the service's `create_app(settings)`. SIGTERM drains the app first (see
    `alta_common.shutdown`).
    """
    app = import_from_string(factory)(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # The app applies TRUSTED_PROXIES itself (create_service_app); uvicorn's own default
        # would trust forwarded headers from 127.0.0.1.
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(settings.graceful_timeout_seconds),
    )
    server = DrainingServer(config, app.state.draining, settings.shutdown_delay_seconds)
    server.run()
