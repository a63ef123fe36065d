"""What every fault scenario shares: a stack tuned for fast retries, a sign-up driver, and the
four invariants of issue 4 computed once, as counts."""

import asyncio
import itertools
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from aiobotocore.session import get_session

from alta_devstack.crm_standin import CrmStandin
from alta_devstack.smtp_sink import SmtpSink
from alta_devstack.sqs import QueueUrls

from ..stack import Stack

PASSWORD = "correct horse battery staple 4"
# Short timeouts so that a message held by a killed consumer comes back in seconds. Each
# consumer's SQS_VISIBILITY_TIMEOUT_SECONDS matches its queue's.
EMAIL_VISIBILITY_SECONDS = 9
CRM_VISIBILITY_SECONDS = 20
# Receives before a message is dead-lettered: above what any fault here should cost.
MAX_RECEIVE_COUNT = 10
GRACE_SECONDS = 5
SERVICE_ENV = {
    "email_sender": {
        "SQS_VISIBILITY_TIMEOUT_SECONDS": str(EMAIL_VISIBILITY_SECONDS),
        "SMTP_TIMEOUT_SECONDS": "3",
    },
    "crm_integration": {
        "SQS_VISIBILITY_TIMEOUT_SECONDS": str(CRM_VISIBILITY_SECONDS),
        # 3 attempts x (2 s limiter wait + 2 s timeout) + 1 s + 2 s backoff = 15 s, within the
        # 80 % of the visibility timeout the settings insist on.
        "CRM_TIMEOUT_SECONDS": "2",
        "CRM_MAX_ATTEMPTS": "3",
        "CRM_RATE_LIMIT_MAX_WAIT_SECONDS": "2",
    },
}


@dataclass
class Counts:
    """The invariants' figures for one scenario; `problems` lists every invariant broken."""

    scenario: str
    registrations: int = 0
    emails: int = 0
    crm_creates: int = 0
    max_in_any_second: int = 0
    dead_lettered: int = 0
    # Late mail of an earlier scenario that broke, arrived during this one.
    earlier_scenarios_emails: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        verdict = "ok" if not self.problems else "BROKEN: " + "; ".join(self.problems)
        return (
            f"{self.scenario:<44} registrations={self.registrations:<4} emails={self.emails:<4} "
            f"crm_creates={self.crm_creates:<4} max/s={self.max_in_any_second:<3} "
            f"dead_lettered={self.dead_lettered:<2} "
            + (
                f"earlier_scenarios_emails={self.earlier_scenarios_emails} "
                if self.earlier_scenarios_emails
                else ""
            )
            + verdict
        )


@dataclass
class Chaos:
    """A running system and its fault switches, shared by scenarios that run one at a time.

    `begin` starts a scenario: the mail sink and the CRM stand-in are emptied, crashed
    instances are started again, and the sign-ups of this scenario (addresses starting with
    its `prefix`) are the registrations the invariants look at.
    """

    stack: Stack
    smtp: SmtpSink
    crm: CrmStandin
    queues: dict[str, QueueUrls]
    # No one-second window at the CRM stand-in may hold more requests than this.
    crm_limit_per_second: float
    prefix: str = ""
    services: tuple[str, ...] = ()

    def begin(self, scenario: str) -> None:
        self.prefix = re.sub(r"[^a-z0-9]+", "-", scenario.lower()).strip("-") + "."
        for instance in self.services:
            process = self.stack.processes.get(instance)
            if process is None or process.poll() is not None:
                self.stack.processes.pop(instance, None)
                self.stack.start(instance)
        self.smtp.clear()
        self.crm.reset()

    @property
    def database_url(self) -> str:
        return self.stack.env["DATABASE_URL"]

    def sign_up(self, count: int, *, via: list[str] | None = None) -> list[int]:
        """Sign up `count` people through registration's API, four at a time; returns statuses.

        Like a client behind a load balancer, a request refused at connect time (that replica
        is gone) goes to the next instance; any other failure is returned as it is.
        """
        instances = via or self.stack.instances("registration")

        def one(number: int) -> int:
            body = {"email": f"{self.prefix}{number}@example.com", "name": f"P{number}"}
            body["password"] = PASSWORD
            for attempt in range(len(instances) * 3):
                url = self.stack.url(instances[(number + attempt) % len(instances)])
                try:
                    return httpx.post(f"{url}/registrations", json=body, timeout=30).status_code
                except httpx.ConnectError:
                    time.sleep(0.2)
            return 0

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, range(count)))

    def sign_up_in_browser(self, count: int, *, via: list[str]) -> list[bool]:
        """Sign up through the BFF's form, four people at a time; True where the person saw
        "Check your inbox". As behind a load balancer, each request goes to the next
        instance when one refuses the connection (every instance shares the CSRF secret)."""

        def one(number: int) -> bool:
            fields = {"email": f"{self.prefix}{number}@example.com", "name": f"P{number}"}
            fields["password"] = PASSWORD
            with httpx.Client(timeout=30) as browser:

                def request(method: str, path: str, **options: Any) -> httpx.Response:
                    for attempt in range(len(via) * 3):
                        url = self.stack.url(via[(number + attempt) % len(via)])
                        try:
                            return browser.request(method, url + path, **options)
                        # A stopping BFF closes its idle keep-alive connections; a request
                        # sent on one at that moment gets no answer and was never read.
                        # Browsers retry exactly this case; a sign-up handled twice would
                        # still show in the invariants (a second email).
                        except (httpx.ConnectError, httpx.RemoteProtocolError):
                            time.sleep(0.2)
                    raise AssertionError("no BFF instance took the connection")

                form = request("GET", "/")
                match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
                assert match, "the sign-up form carries a CSRF token"
                posted = request("POST", "/", data={**fields, "csrf_token": match.group(1)})
                if posted.status_code != 303:
                    return False
                page = request("GET", httpx.URL(posted.headers["location"]).path)
                return page.status_code == 200 and "Check your inbox" in page.text

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, range(count)))

    def wait_for_outbox(self, within: float = 60) -> None:
        """Until registration has published every event it stored."""
        deadline = time.monotonic() + within
        while True:
            with psycopg.connect(self.database_url) as conn:
                row = conn.execute("SELECT count(*) FROM registration.outbox").fetchone()
            if row == (0,):
                return
            assert time.monotonic() < deadline, f"outbox not empty within {within} s"
            time.sleep(0.1)

    def wait_for_mail(self, count: int, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while len(self.smtp.messages()) < count:
            assert time.monotonic() < deadline, f"fewer than {count} emails within {within} s"
            time.sleep(0.1)

    def wait_for_crm(self, count: int, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while self.crm.stats()["creates"] < count:
            assert time.monotonic() < deadline, f"fewer than {count} CRM creates in {within} s"
            time.sleep(0.1)

    def dead_letter_counts(self) -> dict[str, int]:
        return asyncio.run(self._dead_letter_counts())

    async def _dead_letter_counts(self) -> dict[str, int]:
        counts = {}
        async with get_session().create_client(
            "sqs", endpoint_url=self.stack.env["SQS_ENDPOINT_URL"]
        ) as sqs:
            for name, queue in self.queues.items():
                attributes = await sqs.get_queue_attributes(
                    QueueUrl=queue.dlq_url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )
                counts[name] = sum(int(v) for v in attributes["Attributes"].values())
        return counts


def check_invariants(
    chaos: Chaos, scenario: str, *, expected_dead_letters: dict[str, int] | None = None
) -> Counts:
    """The four invariants of issue 4, once the system is quiet."""
    counts = Counts(scenario)
    problems = counts.problems
    with psycopg.connect(chaos.database_url) as conn:
        users = {
            str(user_id): (email, status)
            for user_id, email, status in conn.execute(
                "SELECT id, email, status FROM registration.users WHERE starts_with(email, %s)",
                [chaos.prefix],
            ).fetchall()
        }
        unpublished = conn.execute("SELECT count(*) FROM registration.outbox").fetchone()
    counts.registrations = len(users)

    # 1. Exactly one confirmation email per registration, and none to anyone else. The
    # Message-ID names the event: the same one twice is a resend, two are two sign-ups.
    # Mail to an earlier scenario's people is that scenario's, which waited for quiet and
    # reported its own count: it can only come here after that one broke.
    messages = chaos.smtp.messages()
    earlier = [m for m in messages if not str(m["To"]).startswith(chaos.prefix)]
    counts.earlier_scenarios_emails = len(earlier)
    messages = [m for m in messages if str(m["To"]).startswith(chaos.prefix)]
    mail_to = Counter(str(message["To"]) for message in messages)
    events_to: dict[str, Counter[str]] = {}
    for message in messages:
        events_to.setdefault(str(message["To"]), Counter())[str(message["Message-ID"])] += 1
    counts.emails = sum(mail_to.values())
    addresses = {email for email, _ in users.values()}
    wrong = {a: n for a, n in mail_to.items() if n != 1 or a not in addresses}
    missing = addresses - set(mail_to)
    if wrong or missing:
        resent = sum(1 for a in wrong if any(n > 1 for n in events_to[a].values()))
        problems.append(
            f"emails: {len(missing)} missing, {len(wrong)} addresses not exactly once "
            f"({resent} got one event's email twice, {len(wrong) - resent} emails of several "
            f"events)"
        )

    # 2. Exactly one CRM create per registration (first use of an Idempotency-Key), final status.
    records = chaos.crm.contacts()
    creates = Counter(
        r["payload"]["external_id"] for r in records if r["method"] == "POST" and not r["replayed"]
    )
    counts.crm_creates = sum(creates.values())
    if creates != Counter(list(users)):
        extra = sum(n - 1 for n in creates.values() if n > 1) + len(set(creates) - set(users))
        problems.append(f"crm: {len(set(users) - set(creates))} never created, {extra} extra")
    final_status = _final_crm_status(records)
    stale = [uid for uid, (_, status) in users.items() if final_status.get(uid) != status]
    if stale:
        problems.append(f"crm: {len(stale)} contacts with a status other than the user's")

    # 3. Never over the limit in any one-second window, and no 429 caused by us.
    stats = chaos.crm.stats()
    counts.max_in_any_second = stats["max_in_any_second"]
    if stats["max_in_any_second"] > chaos.crm_limit_per_second:
        gaps = _busiest_second_gaps(sorted(r["received_at"] for r in records))
        problems.append(
            f"crm: {stats['max_in_any_second']} requests in one second (gaps in ms: {gaps})"
        )
    if stats["rejected_429"]:
        problems.append(f"crm: {stats['rejected_429']} answers 429 to our own excess")

    # 4. Nothing unaccounted for: outbox relayed, queues empty, only the expected dead letters.
    assert unpublished is not None
    if unpublished[0]:
        problems.append(f"outbox: {unpublished[0]} rows never published")
    if not chaos.stack.is_quiet():
        problems.append("queues: messages left in flight")
    dead = chaos.dead_letter_counts()
    counts.dead_lettered = sum(dead.values())
    expected = dict.fromkeys(dead, 0) | (expected_dead_letters or {})
    if dead != expected:
        problems.append(f"dead letters {dead}, expected {expected}")
    return counts


def _final_crm_status(records: list[dict[str, Any]]) -> dict[str, str]:
    status: dict[str, str] = {}
    for record in records:
        if record["replayed"]:
            continue
        if record["method"] == "POST":
            status.setdefault(record["payload"]["external_id"], record["payload"]["status"])
        else:
            status[record["path"].rsplit("/", 1)[1]] = record["payload"]["status"]
    return status


def _busiest_second_gaps(times: list[float]) -> list[int]:
    """Milliseconds between the requests of the busiest one-second window: shows whether
    they came evenly spaced or bunched."""
    best: list[float] = []
    start = 0
    for end, received_at in enumerate(times):
        while times[start] <= received_at - 1.0:
            start += 1
        if end - start + 1 > len(best):
            best = times[start : end + 1]
    return [round((b - a) * 1000) for a, b in itertools.pairwise(best)]
