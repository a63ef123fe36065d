"""A person signs up in a browser, confirms by email, logs in; the CRM hears of it once."""

import re
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from alta_devstack.crm_standin import CrmStandin
from alta_devstack.smtp_sink import SmtpSink

from .stack import Stack

PASSWORD = "tr0ub4dor & 3 more words"
T = TypeVar("T")


def eventually(probe: Callable[[], T], *, within: float = 30) -> T:
    """Poll until `probe` returns something truthy (the system is asynchronous)."""
    deadline = time.monotonic() + within
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            assert result, "condition not met in time"
            return result
        time.sleep(0.2)


def csrf_token(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def submit(browser: httpx.Client, path: str, fields: dict[str, str]) -> httpx.Response:
    """Load the form, then post it the way a browser does."""
    form = browser.get(path)
    return browser.post(path, data={**fields, "csrf_token": csrf_token(form)})


def mail_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [m for m in sink.messages() if m["To"] == address]


def confirmation_link(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    match = re.search(r"https?://\S+/confirm\?token=[\w%-]+", body.get_content())
    assert match, "the email carries the confirmation link"
    return match.group(0)


def confirm(browser: httpx.Client, link: str) -> httpx.Response:
    """Open the emailed link, then press its button: the confirmation is a POST."""
    parts = urlsplit(link)
    page = browser.get(f"{parts.path}?{parts.query}")
    token = parts.query.removeprefix("token=")
    return browser.post("/confirm", data={"token": token, "csrf_token": csrf_token(page)})


def crm_requests(crm: CrmStandin, method: str, email: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in crm.contacts()
        if r["method"] == method and (email is None or r["payload"].get("email") == email)
    ]


@pytest.fixture
def browser(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url("web_bff"), follow_redirects=True, timeout=20) as client:
        yield client


def test_sign_up_confirm_log_in_and_reach_the_crm(
    stack: Stack, browser: httpx.Client, smtp_sink: SmtpSink, crm_standin: CrmStandin
) -> None:
    email = "ada@example.com"

    page = submit(browser, "/", {"email": "Ada@Example.com", "name": "Ada", "password": PASSWORD})
    assert page.status_code == 200
    assert "Check your inbox" in page.text
    sign_up_request_id = page.history[0].headers["x-request-id"]

    [message] = eventually(lambda: mail_to(smtp_sink, email))
    assert message.get_body(("html",)) is not None
    link = confirmation_link(message)
    opened = browser.get(urlsplit(link).path + "?" + urlsplit(link).query)
    assert "Confirm my email address" in opened.text
    confirmed = confirm(browser, link)
    assert confirmed.status_code == 200
    assert "Your email is confirmed" in confirmed.text
    again = confirm(browser, link)
    assert "This link was already used" in again.text

    account = submit(browser, "/login", {"email": email, "password": PASSWORD})
    assert account.url.path == "/account"
    assert email in account.text
    assert "Ada" in account.text
    assert "Confirmed" in account.text
    session_cookie = browser.cookies["alta_session"]

    [create] = eventually(lambda: crm_requests(crm_standin, "POST", email))
    assert create["payload"]["name"] == "Ada"
    assert create["payload"]["status"] == "pending"
    assert re.fullmatch(r"[0-9a-f-]{36}", create["idempotency_key"])
    [update] = eventually(lambda: crm_requests(crm_standin, "PATCH"))
    assert update["payload"] == {"status": "confirmed"}
    assert update["idempotency_key"] != create["idempotency_key"]

    logged_out = browser.post("/logout", data={"csrf_token": csrf_token(account)})
    assert logged_out.url.path == "/login"
    assert browser.get("/account").url.path == "/login"

    # Nothing secret in any service's log: not the password, token, link or session.
    token = link.split("token=")[1]
    logs = stack.logs()
    for secret in (PASSWORD, token, session_cookie):
        assert secret not in logs
    # One request id follows the sign-up through HTTP and SQS into every service's log.
    for service in ("web_bff", "registration", "email_sender", "crm_integration"):
        assert f'"request_id": "{sign_up_request_id}"' in stack.logs(service), service


def test_a_second_sign_up_with_a_taken_address_reveals_nothing_and_warns_the_owner(
    stack: Stack, browser: httpx.Client, smtp_sink: SmtpSink, crm_standin: CrmStandin
) -> None:
    fields = {"email": "grace@example.com", "name": "Grace", "password": PASSWORD}
    first = submit(browser, "/", fields)
    [confirmation] = eventually(lambda: mail_to(smtp_sink, "grace@example.com"))
    confirm(browser, confirmation_link(confirmation))

    second = submit(browser, "/", {**fields, "email": "GRACE@example.com", "name": "Mallory"})

    assert (first.status_code, first.url.path) == (second.status_code, second.url.path)
    assert first.text == second.text
    eventually(lambda: len(mail_to(smtp_sink, "grace@example.com")) == 2)
    notice = mail_to(smtp_sink, "grace@example.com")[1]
    assert notice["Subject"] == "You already have an Alta account"
    notice_body = notice.get_body(("plain",))
    assert notice_body is not None
    assert "/confirm?token=" not in notice_body.get_content()
    assert "Mallory" not in notice_body.get_content()
    eventually(stack.is_quiet)
    assert len(crm_requests(crm_standin, "POST")) == 1


def test_mail_held_up_by_an_smtp_outage_arrives_once_when_it_returns(
    stack: Stack, browser: httpx.Client, smtp_sink: SmtpSink
) -> None:
    smtp_sink.stop()
    submit(browser, "/", {"email": "lin@example.com", "name": "Lin", "password": PASSWORD})
    # The sender tries and fails at least once while the server is away.
    eventually(lambda: "message will be retried" in stack.logs())
    smtp_sink.start()

    eventually(lambda: mail_to(smtp_sink, "lin@example.com"), within=60)
    eventually(stack.is_quiet)
    assert len(mail_to(smtp_sink, "lin@example.com")) == 1


def test_a_crm_answering_429_gets_the_contact_after_retry_after(
    stack: Stack, browser: httpx.Client, crm_standin: CrmStandin
) -> None:
    crm_standin.force([429, 429], retry_after="1")
    started = time.time()
    submit(browser, "/", {"email": "kim@example.com", "name": "Kim", "password": PASSWORD})

    [create] = eventually(lambda: crm_requests(crm_standin, "POST", "kim@example.com"))
    assert create["payload"]["name"] == "Kim"
    # Two refusals, each asking for a one-second pause, came before the accepted request.
    assert create["received_at"] - started >= 2.0
    eventually(stack.is_quiet)
    assert len(crm_requests(crm_standin, "POST")) == 1
