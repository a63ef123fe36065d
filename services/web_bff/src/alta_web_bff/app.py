"""The web_bff app: the routes table and the lifespan that creates the backend clients."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from alta_common.http_client import create_http_client
from alta_common.logging import configure_logging
from alta_common.service import create_service_app
from alta_common.tokens import JwtVerifier
from alta_web_bff import account_pages, pages
from alta_web_bff.accounts_backend import AccountsApi, DeliveriesApi
from alta_web_bff.backend import AuthzApi, RegistrationApi
from alta_web_bff.csrf import CsrfGuard
from alta_web_bff.security_headers import SecurityHeadersMiddleware
from alta_web_bff.session import SessionMiddleware
from alta_web_bff.settings import Settings

SERVICE_NAME = "web_bff"


def _routes() -> list[BaseRoute]:
    return [
        Route("/", pages.sign_up_form, methods=["GET"]),
        Route("/", pages.sign_up, methods=["POST"]),
        Route("/check-inbox", pages.check_inbox, methods=["GET"]),
        Route("/confirm", account_pages.confirm_form, methods=["GET"]),
        Route("/confirm", account_pages.confirm, methods=["POST"]),
        Route("/resend-confirmation", account_pages.resend_form, methods=["GET"]),
        Route("/resend-confirmation", account_pages.resend, methods=["POST"]),
        Route("/forgot-password", account_pages.forgot_form, methods=["GET"]),
        Route("/forgot-password", account_pages.forgot, methods=["POST"]),
        Route("/email-sent", account_pages.email_sent, methods=["GET"]),
        Route("/reset-password", account_pages.reset_form, methods=["GET"]),
        Route("/reset-password", account_pages.reset, methods=["POST"]),
        Route("/account/name", account_pages.change_name, methods=["POST"]),
        Route("/account/password", account_pages.change_password, methods=["POST"]),
        Route("/admin/registrations", account_pages.admin_registrations, methods=["GET"]),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.log_in, methods=["POST"]),
        Route("/account", pages.account, methods=["GET"]),
        Route("/logout", pages.log_out, methods=["POST"]),
        Route("/logout-everywhere", pages.log_out_everywhere, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("alta_web_bff", "static")]), name="static"),
    ]


def create_app(
    settings: Settings | None = None,
    *,
    backend_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The app; `backend_transport` replaces the network under the backend calls (tests)."""
    settings = settings or Settings()
    configure_logging(SERVICE_NAME, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with create_http_client(
            timeout_seconds=settings.backend_timeout_seconds, transport=backend_transport
        ) as http:
            registration = RegistrationApi(http, base_url=settings.registration_url)
            authz = AuthzApi(http, base_url=settings.authz_url)
            app.state.registration = registration
            app.state.authz = authz
            app.state.accounts = AccountsApi(http, base_url=settings.registration_url)
            app.state.email_deliveries = DeliveriesApi(
                http, service="email_sender", base_url=settings.email_sender_url
            )
            app.state.crm_deliveries = DeliveriesApi(
                http, service="crm_integration", base_url=settings.crm_integration_url
            )
            app.state.jwt_verifier = JwtVerifier(
                http,
                jwks_url=authz.jwks_url,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
            # No readiness checks on the backends: with one of them down the BFF still serves
            # the pages that work and a clear "try again" for the rest, instead of the load
            # balancer taking every BFF pod out at once.
            app.state.readiness_checks = {}
            yield

    app = create_service_app(
        settings,
        routes=_routes(),
        lifespan=lifespan,
        exception_handlers={HTTPException: pages.http_error, Exception: pages.server_error},
        middleware=[
            Middleware(SecurityHeadersMiddleware, https=settings.uses_https),
            Middleware(SessionMiddleware),
        ],
    )
    app.state.templates = pages.create_templates()
    app.state.csrf = CsrfGuard(
        secret=settings.csrf_secret.get_secret_value().encode(),
        public_origin=settings.public_origin,
        secure_cookie=settings.uses_https,
    )
    return app
