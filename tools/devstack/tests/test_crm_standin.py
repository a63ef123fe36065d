import time
from collections.abc import Callable

import httpx
import pytest

from alta_devstack.crm_standin import CrmStandin

CONTACT = {
    "external_id": "u-1",
    "email": "ada@example.com",
    "name": "Ada",
    "status": "registered",
    "registered_at": "2026-01-01T00:00:00Z",
}


def call(
    crm: CrmStandin,
    method: str,
    path: str,
    body: object = CONTACT,
    *,
    key: str | None = "key-1",
    token: str | None = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or crm.api_token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.request(method, crm.url + path, json=body, headers=headers)


def test_records_every_accepted_request_and_replays_repeated_keys(
    crm_standin: CrmStandin,
) -> None:
    assert call(crm_standin, "POST", "/contacts").status_code == 201
    repeated = call(crm_standin, "POST", "/contacts", {**CONTACT, "name": "Changed"})
    assert (repeated.status_code, repeated.json()["name"]) == (201, "Ada")
    patched = call(crm_standin, "PATCH", "/contacts/u-1", {"status": "confirmed"}, key="key-2")
    assert patched.json()["status"] == "confirmed"
    call(crm_standin, "POST", "/contacts", key="key-3")

    records = crm_standin.contacts()
    assert [(r["method"], r["idempotency_key"], r["replayed"]) for r in records] == [
        ("POST", "key-1", False),
        ("POST", "key-1", True),
        ("PATCH", "key-2", False),
        ("POST", "key-3", False),
    ]
    assert records[0]["payload"] == CONTACT
    stats = crm_standin.stats()
    assert (stats["accepted"], stats["rejected_429"]) == (4, 0)
    # key-3 created u-1 a second time: what the invariants of the chaos suite look for.
    assert (stats["creates"], stats["replayed"], stats["duplicate_creates"]) == (2, 1, 1)


def test_delayed_answers_and_an_outage_on_the_same_port(crm_standin: CrmStandin) -> None:
    crm_standin.delay(1.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            crm_standin.url + "/contacts",
            json=CONTACT,
            headers={"Authorization": f"Bearer {crm_standin.api_token}", "Idempotency-Key": "k"},
            timeout=0.3,
        )
    # The CRM handled the request after all, as a slow server does: only the answer was late.
    assert _eventually_accepted(crm_standin) == 1

    crm_standin.stop()
    with pytest.raises(httpx.ConnectError):
        call(crm_standin, "POST", "/contacts", key="k2")
    crm_standin.start()
    assert call(crm_standin, "POST", "/contacts", key="k2").status_code == 201
    assert crm_standin.stats()["accepted"] == 2


def _eventually_accepted(crm: CrmStandin) -> int:
    deadline = time.monotonic() + 5
    while crm.stats()["accepted"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return crm.stats()["accepted"]


@pytest.mark.parametrize(
    ("method", "path", "body", "options", "status"),
    [
        pytest.param("POST", "/contacts", CONTACT, {"token": "wrong"}, 401, id="bad-token"),
        pytest.param("POST", "/contacts", CONTACT, {"key": None}, 400, id="no-key"),
        pytest.param("POST", "/contacts", {"email": "a@b.c"}, {}, 422, id="missing-fields"),
        pytest.param("PATCH", "/contacts/nobody", {"status": "x"}, {}, 404, id="unknown"),
    ],
)
def test_rejects_bad_requests(
    crm_standin: CrmStandin,
    method: str,
    path: str,
    body: object,
    options: dict[str, str | None],
    status: int,
) -> None:
    response = call(crm_standin, method, path, body, **options)
    assert response.status_code == status
    assert "error" in response.json()
    assert crm_standin.contacts() == []


def test_rejects_malformed_json(crm_standin: CrmStandin) -> None:
    headers = {"Authorization": f"Bearer {crm_standin.api_token}", "Idempotency-Key": "k"}
    response = httpx.post(crm_standin.url + "/contacts", content=b"{nope", headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "body is not valid JSON"}


def test_rate_limit(crm_standin_factory: Callable[..., CrmStandin]) -> None:
    crm = crm_standin_factory(limit_per_second=5)
    headers = {"Authorization": f"Bearer {crm.api_token}", "Idempotency-Key": "k"}
    with httpx.Client(base_url=crm.url, headers=headers) as client:
        responses = [client.post("/contacts", json=CONTACT) for _ in range(20)]
    rejected = [response for response in responses if response.status_code == 429]
    # Only timing-independent checks: a busy machine may spread the requests over seconds.
    assert rejected
    assert {response.headers["Retry-After"] for response in rejected} == {"1"}
    stats = crm.stats()
    assert (stats["accepted"], stats["rejected_429"]) == (20 - len(rejected), len(rejected))
    assert stats["max_in_any_second"] == 5


def test_forced_responses(crm_standin: CrmStandin) -> None:
    crm_standin.force([429, 500], retry_after="2")
    first, second = call(crm_standin, "POST", "/contacts"), call(crm_standin, "POST", "/contacts")
    assert (first.status_code, first.headers["Retry-After"]) == (429, "2")
    assert second.status_code == 500
    assert "Retry-After" not in second.headers
    assert call(crm_standin, "POST", "/contacts").status_code == 201
    stats = crm_standin.stats()
    assert (stats["accepted"], stats["rejected_429"], stats["creates"]) == (1, 0, 1)
