"""GET /metrics: request latency by route template, not by raw path."""

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alta_common.service import create_service_app
from alta_common.settings import ServiceSettings
from alta_devstack.ports import find_free_port
from alta_devstack.servers import ServerThread


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["item_id"]})


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_request_durations_are_counted_by_route_template_and_status() -> None:
    app = create_service_app(
        ServiceSettings(), routes=[Route("/items/{item_id}", item, methods=["GET"])]
    )
    server = ServerThread(app, find_free_port())
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            for item_id in ("a", "b", "c"):
                assert (await http.get(f"/items/{item_id}")).status_code == 200
            assert (await http.get("/no/such/page")).status_code == 404
            assert (await http.post("/items/a")).status_code == 405
            response = await http.get("/metrics")
    finally:
        server.stop()

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    counts = samples(response.text, "alta_http_request_duration_seconds_count")
    assert (
        counts[frozenset({("method", "GET"), ("route", "/items/{item_id}"), ("status", "200")})]
        == 3
    )
    assert counts[frozenset({("method", "GET"), ("route", "unmatched"), ("status", "404")})] == 1
    assert (
        counts[frozenset({("method", "POST"), ("route", "/items/{item_id}"), ("status", "405")})]
        == 1
    )
    # Raw paths never become label values: they would make one series per id.
    assert "/items/a" not in response.text
    assert "/no/such/page" not in response.text


async def test_each_app_has_its_own_registry() -> None:
    first = create_service_app(ServiceSettings(), routes=[])
    second = create_service_app(ServiceSettings(), routes=[])
    assert first.state.metrics.registry is not second.state.metrics.registry
