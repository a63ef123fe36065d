"""Registration runs for real: its own uvicorn server, a fresh database, per-test SQS queues."""

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from aiobotocore.session import get_session
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alta_devstack.ports import find_free_port
from alta_devstack.servers import ServerThread
from alta_devstack.sqs import QueueUrls
from alta_registration.app import create_app
from alta_registration.settings import Settings

TEST_KID = "test-key"


@dataclass
class RegistrationService:
    url: str
    database_url: str
    queues: dict[str, QueueUrls]

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cursor = conn.execute(query.encode(), params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@dataclass
class AuthzStandIn:
    url: str
    # What the stand-in was asked to decide: (action, resource) per /authorize call.
    questions: list[tuple[str, str]]
    # Set to make the stand-in refuse every request, as authz does for a role it lacks.
    refuse_everything: bool = False

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"


@pytest.fixture
def authz_standin(signing_key: Ed25519PrivateKey) -> Iterator[AuthzStandIn]:
    """A stand-in for authz: its JWKS with the test's own key, and `/authorize` allowing an
    account only its own `user:<id>`, and an admin the `registrations` list (authz's real policy
    is tested in authz and end to end)."""
    jwk = json.loads(OKPAlgorithm.to_jwk(signing_key.public_key()))
    jwks = {"keys": [{**jwk, "kid": TEST_KID, "alg": "EdDSA", "use": "sig"}]}
    questions: list[tuple[str, str]] = []
    standin: AuthzStandIn

    async def serve_jwks(_: Request) -> JSONResponse:
        return JSONResponse(jwks)

    async def authorize(request: Request) -> JSONResponse:
        token = request.headers["authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, options={"verify_signature": False})
        body = await request.json()
        questions.append((body["action"], body["resource"]))
        admin_asks = "admin" in claims.get("roles", []) and body["resource"] == "registrations"
        allowed = (
            body["resource"] == f"user:{claims['sub']}" or admin_asks
        ) and not standin.refuse_everything
        return JSONResponse({"allowed": allowed})

    app = Starlette(
        routes=[
            Route("/.well-known/jwks.json", serve_jwks),
            Route("/authorize", authorize, methods=["POST"]),
        ]
    )
    server = ServerThread(app, find_free_port())
    server.start()
    standin = AuthzStandIn(server.url, questions)
    yield standin
    server.stop()


@pytest.fixture
def registration_factory(
    database_url: str,
    sqs_endpoint: str,
    sqs_queues: dict[str, QueueUrls],
    authz_standin: AuthzStandIn,
) -> Iterator[Callable[..., RegistrationService]]:
    servers: list[ServerThread] = []

    def start(**overrides: Any) -> RegistrationService:
        fields: dict[str, Any] = {
            "app_env": "test",
            "database_url": database_url,
            "sqs_endpoint_url": sqs_endpoint,
            "email_queue_name": sqs_queues["email"].name,
            "crm_queue_name": sqs_queues["crm"].name,
            "outbox_poll_interval_seconds": 0.05,
            "account_notice_interval_seconds": 0,
            "authz_url": authz_standin.url,
            "authz_jwks_url": authz_standin.jwks_url,
            **overrides,
        }
        server = ServerThread(create_app(Settings(**fields)), find_free_port())
        server.start()
        servers.append(server)
        return RegistrationService(server.url, database_url, sqs_queues)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def registration(registration_factory: Callable[..., RegistrationService]) -> RegistrationService:
    return registration_factory()


@pytest.fixture
async def client(registration: RegistrationService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=registration.url, timeout=15) as http:
        yield http


async def drain_queue(
    endpoint: str, queue_url: str, *, expect: int, within: float = 10
) -> list[Any]:
    """Receive and delete messages until `expect` arrived and the queue stays quiet briefly."""
    bodies: list[Any] = []
    deadline = time.monotonic() + within
    async with get_session().create_client("sqs", endpoint_url=endpoint) as sqs:
        while time.monotonic() < deadline:
            response = await sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            messages = response.get("Messages", [])
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                await sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            if not messages and len(bodies) >= expect:
                break
    return bodies
