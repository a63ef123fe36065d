"""The account lifecycle and the admin console through the BFF, every service running."""

import re
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx

from alta_devstack.crm_standin import CrmStandin
from alta_devstack.smtp_sink import SmtpSink

from .stack import Stack
from .test_auth_end_to_end import refresh_directly, run_authz_command
from .test_end_to_end import (
    PASSWORD,
    confirm,
    confirmation_link,
    crm_requests,
    csrf_token,
    eventually,
    mail_to,
    submit,
)

NEW_PASSWORD = "a different passphrase 42"


def reset_link(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    match = re.search(r"https?://\S+/reset-password\?token=[\w%-]+", body.get_content())
    assert match, "the email carries the reset link"
    return match.group(0)


def local(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def choose_password(
    browser: httpx.Client, link: str, page: httpx.Response, password: str
) -> httpx.Response:
    """Submit the reset form of `page` (opened from `link`)."""
    token = urlsplit(link).query.removeprefix("token=")
    return browser.post(
        "/reset-password",
        data={"token": token, "password": password, "csrf_token": csrf_token(page)},
    )


def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url("web_bff"), follow_redirects=True, timeout=20)


def test_resend_forgot_reset_and_account_changes(
    stack: Stack, smtp_sink: SmtpSink, crm_standin: CrmStandin
) -> None:
    ada = "ada@example.com"
    with client(stack) as browser, client(stack) as other_device:
        submit(browser, "/", {"email": ada, "name": "Ada", "password": PASSWORD})
        [first] = eventually(lambda: mail_to(smtp_sink, ada))

        # "Didn't get the email?": the same answer for a pending and an unknown address,
        # a new link for the pending one, and the old link stops working.
        resent = submit(browser, "/resend-confirmation", {"email": ada})
        unknown = submit(browser, "/resend-confirmation", {"email": "nobody@example.com"})
        assert resent.text == unknown.text
        [_, second] = eventually(
            lambda: len(mail_to(smtp_sink, ada)) == 2 and mail_to(smtp_sink, ada)
        )
        assert "This link is not valid" in confirm(browser, confirmation_link(first)).text
        assert "Your email is confirmed" in confirm(browser, confirmation_link(second)).text
        assert "This link was already used" in confirm(browser, confirmation_link(second)).text

        # Signed in on another device, then a forgotten password is reset by email.
        submit(other_device, "/login", {"email": ada, "password": PASSWORD})
        old_refresh = other_device.cookies["alta_refresh"]
        asked = submit(browser, "/forgot-password", {"email": ada})
        asked_unknown = submit(browser, "/forgot-password", {"email": "nobody@example.com"})
        assert asked.text == asked_unknown.text
        [reset_email] = eventually(
            lambda: [m for m in mail_to(smtp_sink, ada) if "password" in m["Subject"]]
        )
        link = reset_link(reset_email)
        first_tab, second_tab = browser.get(local(link)), browser.get(local(link))
        assert "Choose a new password" in first_tab.text
        done = choose_password(browser, link, first_tab, NEW_PASSWORD)
        assert "Your password is changed" in done.text
        reused = choose_password(browser, link, second_tab, "an attacker's passphrase")
        assert reused.status_code == 409
        assert "This link was already used" in reused.text
        assert "This link was already used" in browser.get(local(link)).text
        # The other device's session is over: its refresh token is refused.
        assert refresh_directly(stack, old_refresh) == 401
        eventually(lambda: any("was changed" in m["Subject"] for m in mail_to(smtp_sink, ada)))

        old = submit(browser, "/login", {"email": ada, "password": PASSWORD})
        assert old.status_code == 401
        account = submit(browser, "/login", {"email": ada, "password": NEW_PASSWORD})
        assert account.url.path == "/account"

        renamed = browser.post(
            "/account/name", data={"name": "Countess", "csrf_token": csrf_token(account)}
        )
        assert "Hello, Countess" in renamed.text
        wrong = browser.post(
            "/account/password",
            data={
                "current_password": PASSWORD,
                "new_password": "yet another passphrase",
                "csrf_token": csrf_token(renamed),
            },
        )
        assert wrong.status_code == 422
        assert "The current password is not correct." in wrong.text
        changed = browser.post(
            "/account/password",
            data={
                "current_password": NEW_PASSWORD,
                "new_password": "yet another passphrase",
                "csrf_token": csrf_token(wrong),
            },
        )
        assert "Your password is changed" in changed.text
        assert browser.get("/account").url.path == "/login"
        again = submit(browser, "/login", {"email": ada, "password": "yet another passphrase"})
        assert "Countess" in again.text

    eventually(lambda: crm_requests(crm_standin, "PATCH"))
    logs = stack.logs()
    for secret in (PASSWORD, NEW_PASSWORD, link.split("token=")[1]):
        assert secret not in logs


def test_the_admin_console_for_an_admin_only(stack: Stack, smtp_sink: SmtpSink) -> None:
    admin, user = "root@example.com", "bob@example.com"
    with client(stack) as browser:
        for email in (admin, user):
            submit(browser, "/", {"email": email, "name": email[:4], "password": PASSWORD})
            [message] = eventually(lambda e=email: mail_to(smtp_sink, e))  # type: ignore[misc]
            confirm(browser, confirmation_link(message))
        run_authz_command("create-admin", admin, env=stack.env)

        anonymous = browser.get("/admin/registrations")
        assert anonymous.url.path == "/login"

        submit(browser, "/login", {"email": user, "password": PASSWORD})
        refused = browser.get("/admin/registrations")
        assert refused.status_code == 403
        assert "Administrators only" in refused.text
        user_token = browser.cookies["alta_session"]
        # The same refusal straight at every service, with the user's real token.
        me = httpx.get(
            f"{stack.url('registration')}/users/me",
            headers={"authorization": f"Bearer {user_token}"},
        ).json()
        assert me["email"] == user
        bearer = {"authorization": f"Bearer {user_token}"}
        listed = httpx.get(f"{stack.url('registration')}/admin/registrations", headers=bearer)
        assert listed.status_code == 403
        for consumer in ("email_sender", "crm_integration"):
            lookup = httpx.post(
                f"{stack.url(consumer)}/deliveries/lookup",
                json={"user_ids": [me["id"]]},
                headers=bearer,
            )
            assert lookup.status_code == 403, consumer
        browser.post("/logout", data={"csrf_token": csrf_token(browser.get("/account"))})

        submit(browser, "/login", {"email": admin, "password": PASSWORD})
        # Once the consumers have done their work, the console shows when.
        page = eventually(
            lambda: (
                (shown := browser.get("/admin/registrations")).text.count("not yet") == 0 and shown
            ),
            within=60,
        )
        assert page.status_code == 200
        assert admin in page.text
        assert user in page.text
        assert page.text.count("confirmed</span>") == 2
        assert page.text.count(" UTC</time>") == 6
        found = browser.get("/admin/registrations", params={"q": "BOB@"})
        assert user in found.text
        assert admin not in found.text

        # The consumers' lookups for an admin: bad input is a clear 422, good input answers.
        admin_bearer = {"authorization": f"Bearer {browser.cookies['alta_session']}"}
        for consumer, field in (
            ("email_sender", "confirmation_sent_at"),
            ("crm_integration", "crm_synced_at"),
        ):
            url = f"{stack.url(consumer)}/deliveries/lookup"
            for bad in ({"user_ids": []}, {"user_ids": ["not-an-id"]}, {"user_ids": "x"}, {}):
                refused = httpx.post(url, json=bad, headers=admin_bearer)
                assert refused.status_code == 422, (consumer, bad)
            answer = httpx.post(url, json={"user_ids": [me["id"]]}, headers=admin_bearer)
            assert answer.status_code == 200
            assert field in answer.json()["deliveries"][me["id"]]
