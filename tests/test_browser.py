"""A real browser (Debian's Chromium, driven by Playwright) walks the site as a person does.

Sign up → the confirmation email (read from the SMTP sink) → confirm → log in → account →
log out; then the admin console as an admin. A screenshot of every page is kept under
`test-output/browser/` for review.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from alta_devstack.smtp_sink import SmtpSink

from .stack import Stack
from .test_auth_end_to_end import run_authz_command
from .test_end_to_end import PASSWORD, confirmation_link, eventually, mail_to

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "browser"


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "install Chromium: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def snap(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


@pytest.mark.timeout(300)
def test_a_person_signs_up_confirms_logs_in_and_an_admin_sees_them(
    stack: Stack, smtp_sink: SmtpSink, browser: Browser
) -> None:
    base = stack.url("web_bff")
    email = "ada@example.com"
    page = browser.new_page()

    page.goto(base)
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    snap(page, "01-sign-up")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    snap(page, "02-check-inbox")

    [message] = eventually(lambda: mail_to(smtp_sink, email))
    page.goto(confirmation_link(message))
    expect(page.get_by_role("heading", name="Confirm your email address")).to_be_visible()
    snap(page, "03-confirm")
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("heading", name="Your email is confirmed")).to_be_visible()
    snap(page, "04-confirmed")

    log_in(page, base, email)
    expect(page.get_by_role("heading", name="Hello, Ada Lovelace")).to_be_visible()
    expect(page.get_by_text("Confirmed", exact=True)).to_be_visible()
    snap(page, "05-account")
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    snap(page, "06-logged-out")
    page.goto(f"{base}/account")
    expect(page).to_have_url(f"{base}/login")

    page.goto(f"{base}/admin/registrations")
    expect(page).to_have_url(f"{base}/login")
    log_in(page, base, email)
    page.goto(f"{base}/admin/registrations")
    expect(page.get_by_role("heading", name="Administrators only")).to_be_visible()
    snap(page, "07-admin-refused")

    run_authz_command("create-admin", email, env=stack.env)
    page.get_by_role("link", name="Go to your account").click()
    page.get_by_role("button", name="Log out", exact=True).click()
    log_in(page, base, email)
    page.goto(f"{base}/admin/registrations")
    expect(page.get_by_role("heading", name="Sign-ups")).to_be_visible()
    expect(page.get_by_role("cell", name=email)).to_be_visible()
    page.get_by_label("Search by email address or name").fill("lovelace")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("1 sign-up matching")).to_be_visible()
    snap(page, "08-admin-registrations")
    page.close()
