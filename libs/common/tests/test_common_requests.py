"""Hostile JSON bodies get a clear 4xx, never a 500."""

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alta_common.requests import read_json_object, string_fields
from alta_common.service import create_service_app
from alta_common.settings import ServiceSettings


async def echo(request: Request) -> JSONResponse:
    fields = string_fields(await read_json_object(request), ("name",))
    return JSONResponse(fields)


@pytest.fixture
async def client() -> httpx.AsyncClient:
    app = create_service_app(ServiceSettings(), routes=[Route("/echo", echo, methods=["POST"])])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"[" * 10_000, JSON, 400),
        (b'{"name": ' + b"1" * 5_000 + b"}", JSON, 400),
        (b'{"name": "abc\\ud800"}', JSON, 422),
        (b'{"name": "ok"', JSON, 400),
        (b"\xff", JSON, 400),
        (b'"just a string"', JSON, 400),
        (b'{"name": ["list"]}', JSON, 422),
        (b"{}", JSON, 422),
        (b'{"name": "ok"}', {"content-type": "text/plain"}, 415),
        (b'{"name": "' + b"x" * 17_000 + b'"}', JSON, 413),
    ],
)
async def test_hostile_bodies_get_a_clear_4xx(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int
) -> None:
    response = await client.post("/echo", content=content, headers=headers)

    assert response.status_code == status
    assert response.json()["error"]["message"]


async def test_a_well_formed_body_passes(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", json={"name": "Zoë"})

    assert response.status_code == 200
    assert response.json() == {"name": "Zoë"}
