"""/healthz (the process is alive) and /readyz (its dependencies answer)."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alta_common.shutdown import Draining

ReadinessCheck = Callable[[], Awaitable[object]]
CHECK_TIMEOUT_SECONDS = 2.0

log = structlog.get_logger("alta.health")


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Runs the checks the app's lifespan put in `state.readiness_checks`."""
    checks: Mapping[str, ReadinessCheck] = getattr(request.app.state, "readiness_checks", {})
    draining: Draining | None = getattr(request.app.state, "draining", None)
    if draining is not None and draining.started:
        return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
            results[name] = "ok"
        except Exception as exc:
            log.warning("readiness check failed", check=name, error=repr(exc))
            results[name] = "failing"
    ready = all(result == "ok" for result in results.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": results},
        status_code=200 if ready else 503,
    )


health_routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
