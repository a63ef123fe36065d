"""The account lifecycle pages: confirm by POST, resend, forgot and reset, change name and
password; and the admin console."""

import asyncio
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from alta_common.tokens import Principal
from alta_web_bff.accounts_backend import (
    Accepted,
    AccountsApi,
    DeliveriesApi,
    DeliveryTimes,
    Done,
    Forbidden,
    Refused,
    ResetLink,
    SignUpPage,
)
from alta_web_bff.backend import Account, NotSignedIn, RegistrationApi, Unavailable
from alta_web_bff.forms import (
    NAME_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    email_problem,
    new_password_problem,
)
from alta_web_bff.pages import (
    MAX_CONFIRMATION_TOKEN_LENGTH,
    TOO_MANY_ATTEMPTS,
    TRY_AGAIN,
    _back_to_login,
    _checked_form,
    _form_page,
    _message_page,
    _page,
    confirmation_page,
    error_page,
)
from alta_web_bff.session import SessionUnavailable, current_session, end_session

ADMIN_PAGE_SIZE = 25
MAX_SEARCH_LENGTH = 254
MAX_ADMIN_PAGE = 10_000


def _token_param(request: Request) -> str:
    token = request.query_params.get("token", "")
    return token if len(token) <= MAX_CONFIRMATION_TOKEN_LENGTH else ""


# Confirmation: the emailed link opens a page; only its button (a POST) confirms, so a mail
# scanner or a prefetching browser that follows the link changes nothing.


async def confirm_form(request: Request) -> Response:
    token = _token_param(request)
    if not token:
        return confirmation_page(request, None)
    return _form_page(request, "confirm.html", {"token": token})


async def confirm(request: Request) -> Response:
    fields = await _checked_form(request)
    token = fields.get("token", "")
    if not token or len(token) > MAX_CONFIRMATION_TOKEN_LENGTH:
        return confirmation_page(request, None)
    registration: RegistrationApi = request.app.state.registration
    return confirmation_page(request, await registration.confirm(token))


# "Didn't get the email?" and "Forgot your password?": one email form each, and the same
# answer whether or not the address has an account.


def _email_page(
    request: Request,
    kind: str,
    *,
    email: str = "",
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {"kind": kind, "email": email, "errors": errors or {}, "alert": alert}
    return _form_page(request, "email_request.html", context, status_code=status_code)


async def resend_form(request: Request) -> Response:
    return _email_page(request, "resend")


async def forgot_form(request: Request) -> Response:
    return _email_page(request, "forgot")


async def _email_request(request: Request, kind: str) -> Response:
    email = (await _checked_form(request)).get("email", "").strip()
    if problem := email_problem(email):
        return _email_page(request, kind, email=email, errors={"email": problem}, status_code=422)
    accounts: AccountsApi = request.app.state.accounts
    if kind == "resend":
        result = await accounts.resend_confirmation(email)
    else:
        result = await accounts.request_password_reset(email)
    match result:
        case Accepted():
            return RedirectResponse(f"/email-sent?for={kind}", status_code=303)
        case Refused(status=429):
            return _email_page(request, kind, email=email, alert=TOO_MANY_ATTEMPTS, status_code=429)
        case Refused(fields=fields, message=message):
            errors = {"email": fields["email"]} if "email" in fields else {}
            alert = None if errors else message or "Please check the address and try again."
            return _email_page(
                request, kind, email=email, errors=errors, alert=alert, status_code=422
            )
        case Unavailable():
            return _email_page(request, kind, email=email, alert=TRY_AGAIN, status_code=503)


async def resend(request: Request) -> Response:
    return await _email_request(request, "resend")


async def forgot(request: Request) -> Response:
    return await _email_request(request, "forgot")


async def email_sent(request: Request) -> Response:
    if request.query_params.get("for") == "forgot":
        message = (
            "If an account uses that address, we have emailed it a link to choose a new "
            "password. The link works once, for one hour."
        )
    else:
        message = (
            "If an account is waiting for confirmation at that address, we have emailed it a "
            "new link; older links no longer work."
        )
    return _message_page(
        request,
        title="Check your inbox",
        message=message,
        link_url="/login",
        link_text="Go to the login page",
    )


_RESET_LINK_TEXT = {
    ResetLink.USED: (
        409,
        "This link was already used",
        "Each reset link works once. If you still need a new password, ask for a new link.",
    ),
    ResetLink.EXPIRED: (
        410,
        "This link has expired",
        "Reset links are valid for one hour. Ask for a new link.",
    ),
    ResetLink.INVALID: (
        400,
        "This link is not valid",
        "The link may be incomplete: copy the whole link from the email, or ask for a new one.",
    ),
}


def _reset_link_refused(request: Request, link: ResetLink) -> Response:
    status_code, title, message = _RESET_LINK_TEXT[link]
    return _message_page(
        request,
        title=title,
        message=message,
        link_url="/forgot-password",
        link_text="Ask for a new link",
        tone="error",
        status_code=status_code,
    )


def _reset_page(
    request: Request,
    token: str,
    *,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "token": token,
        "errors": errors or {},
        "alert": alert,
        "password_min_length": PASSWORD_MIN_LENGTH,
        "password_max_length": PASSWORD_MAX_LENGTH,
    }
    return _form_page(request, "reset_password.html", context, status_code=status_code)


async def reset_form(request: Request) -> Response:
    token = _token_param(request)
    if not token:
        return _reset_link_refused(request, ResetLink.INVALID)
    accounts: AccountsApi = request.app.state.accounts
    match await accounts.check_reset_link(token):
        case ResetLink.USABLE:
            return _reset_page(request, token)
        case ResetLink() as link:
            return _reset_link_refused(request, link)
        case Unavailable():
            return error_page(request, 503)


async def reset(request: Request) -> Response:
    fields = await _checked_form(request)
    token = fields.get("token", "")
    password = fields.get("password", "")
    if not token or len(token) > MAX_CONFIRMATION_TOKEN_LENGTH:
        return _reset_link_refused(request, ResetLink.INVALID)
    if problem := new_password_problem(password):
        return _reset_page(request, token, errors={"password": problem}, status_code=422)
    accounts: AccountsApi = request.app.state.accounts
    match await accounts.reset_password(token, password):
        case Done():
            response = _message_page(
                request,
                title="Your password is changed",
                message="Every device that was signed in has been logged out. Log in with "
                "your new password.",
                link_url="/login",
                link_text="Log in",
                tone="success",
            )
            end_session(response, secure=request.app.state.settings.uses_https)
            return response
        case ResetLink() as link:
            return _reset_link_refused(request, link)
        case Refused(fields=refused_fields, message=message):
            errors = (
                {"password": refused_fields["password"]} if "password" in refused_fields else {}
            )
            return _reset_page(
                request, token, errors=errors, alert=None if errors else message, status_code=422
            )
        case Unavailable():
            return _reset_page(request, token, alert=TRY_AGAIN, status_code=503)


# Signed-in pages.


async def _signed_in(request: Request) -> tuple[str, Principal] | Response:
    """The session's access token and its verified principal, or the page to answer with."""
    session = current_session(request)
    if session is None:
        return _back_to_login(request)
    if isinstance(session, SessionUnavailable):
        return error_page(request, 503)
    return session.access_token, session.principal


def account_page(
    request: Request,
    account: Account,
    *,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "account": account,
        "errors": errors or {},
        "alert": alert,
        "notice": notice,
        "name_max_length": NAME_MAX_LENGTH,
        "password_min_length": PASSWORD_MIN_LENGTH,
        "password_max_length": PASSWORD_MAX_LENGTH,
    }
    return _form_page(request, "account.html", context, status_code=status_code)


async def _current_account(request: Request, access_token: str) -> Account | Response:
    registration: RegistrationApi = request.app.state.registration
    match await registration.account(access_token):
        case Account() as account:
            return account
        case NotSignedIn():
            return _back_to_login(request)
        case Unavailable():
            return error_page(request, 503)


async def change_name(request: Request) -> Response:
    fields = await _checked_form(request)
    signed_in = await _signed_in(request)
    if isinstance(signed_in, Response):
        return signed_in
    access_token, _ = signed_in
    name = fields.get("name", "").strip()
    problem = None
    if not name:
        problem = "Enter your name."
    elif len(name) > NAME_MAX_LENGTH:
        problem = f"Use at most {NAME_MAX_LENGTH} characters."
    accounts: AccountsApi = request.app.state.accounts
    result = None if problem else await accounts.change_name(access_token, name)
    match result:
        case Account() as account:
            return account_page(request, account, notice="Your name is saved.")
        case NotSignedIn():
            return _back_to_login(request)
        case Unavailable():
            return error_page(request, 503)
    current = await _current_account(request, access_token)
    if isinstance(current, Response):
        return current
    if isinstance(result, Refused):
        problem = result.fields.get("name") or result.message
    return account_page(request, current, errors={"name": problem or ""}, status_code=422)


async def change_password(request: Request) -> Response:
    fields = await _checked_form(request)
    signed_in = await _signed_in(request)
    if isinstance(signed_in, Response):
        return signed_in
    access_token, _ = signed_in
    current_password = fields.get("current_password", "")
    new_password = fields.get("new_password", "")
    errors: dict[str, str] = {}
    if not current_password:
        errors["current_password"] = "Enter your current password."  # noqa: S105 (a message)
    if problem := new_password_problem(new_password):
        errors["new_password"] = problem
    if not errors:
        accounts: AccountsApi = request.app.state.accounts
        match await accounts.change_password(
            access_token, current_password=current_password, new_password=new_password
        ):
            case Done():
                # Every session, this one included, ends: a stolen one must not survive.
                response = _message_page(
                    request,
                    title="Your password is changed",
                    message="Every device that was signed in has been logged out. Log in "
                    "with your new password.",
                    link_url="/login",
                    link_text="Log in",
                    tone="success",
                )
                end_session(response, secure=request.app.state.settings.uses_https)
                return response
            case Refused(fields=refused_fields, message=message):
                errors = {
                    name: refused_fields[name]
                    for name in ("current_password", "new_password")
                    if name in refused_fields
                } or {"new_password": message}
            case NotSignedIn():
                return _back_to_login(request)
            case Unavailable():
                return error_page(request, 503)
    current = await _current_account(request, access_token)
    if isinstance(current, Response):
        return current
    return account_page(request, current, errors=errors, status_code=422)


# The admin console.


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 1 <= int(raw) <= MAX_ADMIN_PAGE else 1


async def admin_registrations(request: Request) -> Response:
    signed_in = await _signed_in(request)
    if isinstance(signed_in, Response):
        return signed_in
    access_token, _ = signed_in
    search = request.query_params.get("q", "").strip()[:MAX_SEARCH_LENGTH]
    page = _page_number(request.query_params.get("page"))
    accounts: AccountsApi = request.app.state.accounts
    listed = await accounts.list_sign_ups(
        access_token, search=search, page=page, per_page=ADMIN_PAGE_SIZE
    )
    match listed:
        case Forbidden():
            return _message_page(
                request,
                title="Administrators only",
                message="This page is for administrators, and your account is not one.",
                link_url="/account",
                link_text="Go to your account",
                tone="error",
                status_code=403,
            )
        case NotSignedIn():
            return _back_to_login(request)
        case Unavailable():
            return error_page(request, 503)
    assert isinstance(listed, SignUpPage)
    user_ids = [row.id for row in listed.rows]
    email_sender: DeliveriesApi = request.app.state.email_deliveries
    crm: DeliveriesApi = request.app.state.crm_deliveries
    emails, syncs = await asyncio.gather(
        email_sender.lookup(access_token, user_ids), crm.lookup(access_token, user_ids)
    )
    # A consumer that does not answer leaves its column unknown; the list itself still shows.
    rows = [
        {
            "signup": row,
            "email": None
            if isinstance(emails, Unavailable)
            else emails.get(row.id, DeliveryTimes()),
            "crm": None if isinstance(syncs, Unavailable) else syncs.get(row.id, DeliveryTimes()),
        }
        for row in listed.rows
    ]
    pages = max(1, math.ceil(listed.total / listed.per_page))
    context = {
        "rows": rows,
        "search": search,
        "page": listed.page,
        "pages": pages,
        "total": listed.total,
    }
    return _page(request, "admin_registrations.html", context)
