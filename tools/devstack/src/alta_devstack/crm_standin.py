"""A stand-in for the company CRM's HTTP API: bearer auth, idempotency keys, a rate limit,
a record of every accepted request, and controls that let tests force failures."""

import asyncio
import json
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alta_devstack.servers import ServerThread

CONTACT_FIELDS = ("external_id", "email", "name", "status", "registered_at")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Crm:
    def __init__(self, api_token: str, limit_per_second: int) -> None:
        self.api_token = api_token
        self.limit_per_second = limit_per_second
        self.reset()

    def reset(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        self.accepted: list[dict[str, Any]] = []
        self.rejected_429 = 0
        self.forced: deque[tuple[int, str | None]] = deque()
        self.delays: deque[float] = deque()
        self.admitted_at: deque[float] = deque()
        # Like the real CRM: a repeated Idempotency-Key gets the first answer again, changing
        # nothing. Replays stay in `accepted` (marked) so tests can see them.
        self.answers_by_key: dict[str, tuple[int, dict[str, Any]]] = {}

    async def admit(self, request: Request) -> Response | None:
        """The checks every API call passes before its body is read, or the answer if not."""
        if self.delays:
            # A slow CRM: the request is handled, and answered, only after the pause, even if
            # the client has given up waiting by then (so its body is read first).
            await request.body()
            await asyncio.sleep(self.delays.popleft())
        if self.forced:
            status, retry_after = self.forced.popleft()
            headers = {"Retry-After": retry_after} if retry_after and status in (429, 503) else None
            return _error(status, "forced by test control", headers)
        expected = f"Bearer {self.api_token}".encode()
        if not secrets.compare_digest(request.headers.get("authorization", "").encode(), expected):
            return _error(401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})
        # Sliding one-second window over the requests let through so far.
        now = time.monotonic()
        while self.admitted_at and self.admitted_at[0] <= now - 1.0:
            self.admitted_at.popleft()
        if len(self.admitted_at) >= self.limit_per_second:
            self.rejected_429 += 1
            return _error(429, "rate limit exceeded", {"Retry-After": "1"})
        self.admitted_at.append(now)
        if not request.headers.get("idempotency-key"):
            return _error(400, "Idempotency-Key header is required")
        return None

    async def read_fields(
        self, request: Request, fields: tuple[str, ...]
    ) -> dict[str, Any] | Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _error(400, "body is not valid JSON")
        if not isinstance(payload, dict):
            return _error(422, "body must be a JSON object")
        invalid = [field for field in fields if not isinstance(payload.get(field), str)]
        if invalid:
            return _error(422, f"missing or non-string fields: {', '.join(invalid)}")
        return payload

    def record(self, request: Request, payload: dict[str, Any], *, replayed: bool) -> None:
        self.accepted.append(
            {
                "received_at": time.time(),
                "method": request.method,
                "path": request.url.path,
                "idempotency_key": request.headers["idempotency-key"],
                "payload": payload,
                "replayed": replayed,
            }
        )

    def replay(self, request: Request, payload: dict[str, Any]) -> Response | None:
        """The first answer to this Idempotency-Key, if the CRM has seen the key before."""
        earlier = self.answers_by_key.get(request.headers["idempotency-key"])
        if earlier is None:
            return None
        self.record(request, payload, replayed=True)
        status, body = earlier
        return JSONResponse(body, status_code=status)

    def answer(
        self, request: Request, payload: dict[str, Any], status: int, body: dict[str, Any]
    ) -> Response:
        self.record(request, payload, replayed=False)
        self.answers_by_key[request.headers["idempotency-key"]] = (status, dict(body))
        return JSONResponse(body, status_code=status)

    async def create_contact(self, request: Request) -> Response:
        if (refusal := await self.admit(request)) is not None:
            return refusal
        payload = await self.read_fields(request, CONTACT_FIELDS)
        if isinstance(payload, Response):
            return payload
        if (replayed := self.replay(request, payload)) is not None:
            return replayed
        self.contacts[payload["external_id"]] = dict(payload)  # a PATCH must not alter the record
        return self.answer(request, payload, 201, payload)

    async def update_contact(self, request: Request) -> Response:
        if (refusal := await self.admit(request)) is not None:
            return refusal
        payload = await self.read_fields(request, ("status",))
        if isinstance(payload, Response):
            return payload
        if (replayed := self.replay(request, payload)) is not None:
            return replayed
        contact = self.contacts.get(request.path_params["external_id"])
        if contact is None:
            return _error(404, "no contact with this external_id")
        contact["status"] = payload["status"]
        return self.answer(request, payload, 200, contact)

    async def recorded_requests(self, request: Request) -> Response:
        return JSONResponse(self.accepted)

    async def force_responses(self, request: Request) -> Response:
        body = await request.json()
        retry_after = body.get("retry_after")
        self.forced.extend((int(status), retry_after) for status in body["statuses"])
        return JSONResponse({"queued": len(self.forced)})

    async def delay_responses(self, request: Request) -> Response:
        body = await request.json()
        self.delays.extend([float(body["seconds"])] * int(body["count"]))
        return JSONResponse({"queued": len(self.delays)})

    async def reset_state(self, request: Request) -> Response:
        self.reset()
        return Response(status_code=204)

    async def stats(self, request: Request) -> Response:
        first_creates = [r for r in self.accepted if r["method"] == "POST" and not r["replayed"]]
        created_ids = [r["payload"]["external_id"] for r in first_creates]
        return JSONResponse(
            {
                "accepted": len(self.accepted),
                "rejected_429": self.rejected_429,
                "max_in_any_second": _max_in_any_second([r["received_at"] for r in self.accepted]),
                # Creates under a key not seen before, and contacts created more than once.
                "creates": len(first_creates),
                "duplicate_creates": len(created_ids) - len(set(created_ids)),
                "replayed": sum(1 for r in self.accepted if r["replayed"]),
            }
        )


def _max_in_any_second(times: list[float]) -> int:
    # The busiest window can be taken to end at an accepted request: count back one second.
    busiest, start = 0, 0
    for end, received_at in enumerate(times):
        while times[start] <= received_at - 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


def create_app(*, api_token: str, limit_per_second: int = 100) -> Starlette:
    crm = _Crm(api_token, limit_per_second)
    return Starlette(
        routes=[
            Route("/contacts", crm.create_contact, methods=["POST"]),
            Route("/contacts", crm.recorded_requests, methods=["GET"]),
            Route("/contacts/{external_id}", crm.update_contact, methods=["PATCH"]),
            Route("/_control/responses", crm.force_responses, methods=["POST"]),
            Route("/_control/delays", crm.delay_responses, methods=["POST"]),
            Route("/_control/reset", crm.reset_state, methods=["POST"]),
            Route("/_control/stats", crm.stats, methods=["GET"]),
        ]
    )


@dataclass(frozen=True)
class CrmStandin:
    """A running stand-in, as tests see it: where it is and its test controls.

    `server` is set when the stand-in runs in the test process; then `stop()` and `start()`
    take it off and back on the same port (an outage), keeping what it has recorded.
    """

    url: str
    api_token: str
    server: ServerThread | None = None

    def stop(self) -> None:
        assert self.server is not None, "only a stand-in started by the fixture can be stopped"
        self.server.stop()

    def start(self) -> None:
        assert self.server is not None, "only a stand-in started by the fixture can be started"
        self.server.start()

    def contacts(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self._call("GET", "/contacts").json()
        return records

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self._call("GET", "/_control/stats").json()
        return stats

    def force(self, statuses: list[int], retry_after: str | None = None) -> None:
        self._call(
            "POST", "/_control/responses", {"statuses": statuses, "retry_after": retry_after}
        )

    def reset(self) -> None:
        """Forget every contact, record and pending switch, as if freshly started."""
        self._call("POST", "/_control/reset")

    def delay(self, seconds: float, count: int = 1) -> None:
        """The next `count` requests are answered only after `seconds`."""
        self._call("POST", "/_control/delays", {"seconds": seconds, "count": count})

    def _call(self, method: str, path: str, body: object = None) -> httpx.Response:
        response = httpx.request(method, self.url + path, json=body)
        response.raise_for_status()
        return response


def main() -> None:
    app = create_app(
        api_token=os.environ.get("CRM_API_TOKEN", "dev-crm-token"),
        limit_per_second=int(os.environ.get("DEVSTACK_CRM_LIMIT_PER_SECOND", "100")),
    )
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("DEVSTACK_CRM_PORT", "8089")))


if __name__ == "__main__":
    main()
