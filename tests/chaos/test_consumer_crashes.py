"""Consumers killed or stopped while they hold messages: nothing lost, nothing twice."""

import time
from collections.abc import Callable

import pytest

from .harness import GRACE_SECONDS, Chaos, Counts

pytestmark = pytest.mark.timeout(300)

Invariants = Callable[..., Counts]
# uvicorn re-raises the SIGTERM it handled once it has shut down, so a clean exit is -15.
CLEAN_EXIT = (0, -15)


def test_no_fault(scenario: Chaos, invariants: Invariants) -> None:
    chaos = scenario
    assert set(chaos.sign_up(10)) == {202}
    invariants(chaos)


def test_kill_9_email_sender_mid_batch(scenario: Chaos, invariants: Invariants) -> None:
    chaos = scenario
    # Slow answers keep a batch in hand when the kill comes.
    chaos.smtp.delay_data(0.5, count=6)
    chaos.sign_up(20)
    chaos.wait_for_mail(2)
    chaos.stack.kill("email_sender")
    chaos.stack.start("email_sender")
    invariants(chaos)


def test_kill_9_crm_integration_mid_batch(scenario: Chaos, invariants: Invariants) -> None:
    chaos = scenario
    chaos.crm.delay(0.5, count=6)
    chaos.sign_up(20)
    chaos.wait_for_crm(2)
    chaos.stack.kill("crm_integration")
    chaos.stack.start("crm_integration")
    invariants(chaos)


@pytest.mark.parametrize("service", ["email_sender", "crm_integration"])
def test_sigterm_consumer_during_a_long_poll(
    service: str, scenario: Chaos, invariants: Invariants
) -> None:
    # A 20 s long poll is open and idle when SIGTERM comes: the consumer must not wait it out.
    chaos = scenario
    chaos.stack.stop(service)
    chaos.stack.start(service, env={"SQS_WAIT_SECONDS": "20"})
    time.sleep(1)
    started = time.monotonic()
    process = chaos.stack.terminate(service)
    assert process.wait(timeout=GRACE_SECONDS + 10) in CLEAN_EXIT
    exit_seconds = time.monotonic() - started
    assert exit_seconds < GRACE_SECONDS + 5, f"{service} took {exit_seconds:.1f} s to exit"
    chaos.sign_up(5)
    chaos.stack.start(service)
    invariants(chaos)


def test_sigterm_email_sender_mid_batch(scenario: Chaos, invariants: Invariants) -> None:
    chaos = scenario
    chaos.smtp.delay_data(0.5, count=6)
    chaos.sign_up(20)
    chaos.wait_for_mail(2)
    process = chaos.stack.terminate("email_sender")
    assert process.wait(timeout=GRACE_SECONDS + 15) in CLEAN_EXIT
    chaos.stack.start("email_sender")
    invariants(chaos)


def test_sigterm_crm_integration_mid_batch(scenario: Chaos, invariants: Invariants) -> None:
    chaos = scenario
    chaos.crm.delay(0.5, count=6)
    chaos.sign_up(20)
    chaos.wait_for_crm(2)
    process = chaos.stack.terminate("crm_integration")
    assert process.wait(timeout=GRACE_SECONDS + 25) in CLEAN_EXIT
    chaos.stack.start("crm_integration")
    invariants(chaos)
