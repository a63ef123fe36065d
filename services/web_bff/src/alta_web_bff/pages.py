"""The page handlers: sign-up, confirmation, login, account and logout, plus the error pages."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jinja2
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from alta_web_bff.backend import (
    Account,
    AuthzApi,
    Confirmation,
    LoggedIn,
    LoginRefusal,
    LoginRefused,
    NotSignedIn,
    RegistrationApi,
    SignUpAccepted,
    SignUpInvalid,
    SignUpRefused,
    Unavailable,
)
from alta_web_bff.csrf import CSRF_FIELD, CsrfGuard
from alta_web_bff.forms import (
    NAME_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    LoginForm,
    SignUpForm,
    read_form,
)
from alta_web_bff.security_headers import security_headers
from alta_web_bff.session import (
    SessionUnavailable,
    current_session,
    end_session,
    refresh_token,
    start_session,
)
from alta_web_bff.settings import Settings

log = structlog.get_logger("alta.web_bff.pages")

TRY_AGAIN = "We could not reach our servers. Please try again in a moment."
TOO_MANY_ATTEMPTS = "Too many attempts, try again later."
# Confirmation tokens are short; a longer one was not issued by us and is not worth sending on.
MAX_CONFIRMATION_TOKEN_LENGTH = 512

_ERROR_TEXT: dict[int, tuple[str, str]] = {
    400: ("We could not read that form", "Reload the page and try again."),
    403: (
        "Please try again",
        "Your session expired or the form was sent from another site; reload and try again.",
    ),
    404: ("Page not found", "There is nothing at this address."),
    405: ("Not available", "This page cannot be used that way."),
    413: (
        "That was too much",
        "The form was larger than we accept. Shorten what you typed and try again.",
    ),
    415: (
        "Unsupported form",
        "This address only accepts the form on our own page. Reload the page and try again.",
    ),
    429: ("Slow down", TOO_MANY_ATTEMPTS),
    500: ("Something went wrong", "Something went wrong on our side. Please try again later."),
    503: ("Temporarily unavailable", TRY_AGAIN),
}
_LOGIN_REFUSALS: dict[LoginRefusal, tuple[int, str]] = {
    LoginRefusal.INVALID_CREDENTIALS: (401, "Email or password is incorrect."),
    LoginRefusal.EMAIL_NOT_CONFIRMED: (
        403,
        "Please confirm your email first: open the link in the email we sent you.",
    ),
    LoginRefusal.INVALID_INPUT: (422, "Enter a valid email address and password."),
    LoginRefusal.TOO_MANY_ATTEMPTS: (429, TOO_MANY_ATTEMPTS),
}
_GENERIC_ERROR_TEXT = ("Something went wrong", "Please go back and try again.")
# The page holding each form, to try again after it was refused.
_FORM_PAGES = {
    "/": "/",
    "/login": "/login",
    "/logout": "/account",
    "/confirm": "/",
    "/resend-confirmation": "/resend-confirmation",
    "/forgot-password": "/forgot-password",
    "/reset-password": "/forgot-password",
    "/account/name": "/account",
    "/account/password": "/account",
    "/logout-everywhere": "/account",
}


def _long_date(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def create_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("alta_web_bff", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["long_date"] = _long_date
    env.globals.update(
        utc=UTC,
        name_max_length=NAME_MAX_LENGTH,
        password_min_length=PASSWORD_MIN_LENGTH,
        password_max_length=PASSWORD_MAX_LENGTH,
    )
    return Jinja2Templates(env=env)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=headers
    )
    # The pages carry CSRF tokens and account details: no shared or back-button caches.
    response.headers["Cache-Control"] = "no-store"
    return response


def _form_page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    guard: CsrfGuard = request.app.state.csrf
    token = guard.token_for(request)
    response = _page(
        request,
        template,
        {**context, "csrf_token": token.value},
        status_code=status_code,
        headers=headers,
    )
    guard.remember(response, token)
    return response


def _message_page(
    request: Request,
    *,
    title: str,
    message: str,
    link_url: str,
    link_text: str,
    tone: str = "info",
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    context = {
        "title": title,
        "message": message,
        "link_url": link_url,
        "link_text": link_text,
        "tone": tone,
    }
    return _page(request, "message.html", context, status_code=status_code, headers=headers)


def _next_step(request: Request, status_code: int) -> tuple[str, str]:
    """Where the error page's link leads: back to the refused form, a retry, or the start."""
    if request.method == "POST":
        return _FORM_PAGES.get(request.url.path, "/"), "Back to the form"
    if status_code == 503:
        query = request.url.query
        return request.url.path + (f"?{query}" if query else ""), "Try again"
    return "/", "Go to the sign-up page"


def error_page(
    request: Request, status_code: int, *, headers: Mapping[str, str] | None = None
) -> Response:
    title, message = _ERROR_TEXT.get(status_code, _GENERIC_ERROR_TEXT)
    link_url, link_text = _next_step(request, status_code)
    return _message_page(
        request,
        title=title,
        message=message,
        link_url=link_url,
        link_text=link_text,
        tone="error",
        status_code=status_code,
        headers=headers,
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """Every HTTPException (404, 405, 413, the form errors) as a page instead of JSON."""
    assert isinstance(exc, HTTPException)
    return error_page(request, exc.status_code, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    # Answered outside the middleware stack, so the security headers are added here.
    headers = security_headers(https=_settings(request).uses_https)
    return error_page(request, 500, headers=headers)


async def _checked_form(request: Request) -> dict[str, str]:
    """The posted fields, once the form is known to come from our own page in this browser."""
    guard: CsrfGuard = request.app.state.csrf
    # Checked before the body is read, so a cross-site post of any content type (multipart,
    # text/plain) is refused as such rather than as an unsupported form.
    if not guard.same_origin(request):
        log.info("form refused by origin check", path=request.url.path)
        raise HTTPException(403)
    fields = await read_form(request)
    if not guard.accepts(request, fields.get(CSRF_FIELD)):
        log.info("form refused by csrf check", path=request.url.path)
        raise HTTPException(403)
    return fields


def _sign_up_page(
    request: Request,
    form: SignUpForm | None = None,
    *,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "email": form.email if form else "",
        "name": form.name if form else "",
        "errors": errors or {},
        "alert": alert,
        "name_max_length": NAME_MAX_LENGTH,
        "password_min_length": PASSWORD_MIN_LENGTH,
        "password_max_length": PASSWORD_MAX_LENGTH,
    }
    return _form_page(request, "signup.html", context, status_code=status_code)


async def sign_up_form(request: Request) -> Response:
    return _sign_up_page(request)


async def sign_up(request: Request) -> Response:
    form = SignUpForm.from_fields(await _checked_form(request))
    if problems := form.problems():
        return _sign_up_page(
            request,
            form,
            errors=problems,
            alert="Please fix the fields marked below.",
            status_code=422,
        )
    registration: RegistrationApi = request.app.state.registration
    result = await registration.sign_up(email=form.email, name=form.name, password=form.password)
    match result:
        case SignUpAccepted():
            # Redirected so that reloading the page does not send the form again.
            return RedirectResponse("/check-inbox", status_code=303)
        case SignUpInvalid(fields=fields, message=message):
            errors: dict[str, str] = {
                name: fields[name] for name in ("email", "name", "password") if name in fields
            }
            alert = "Please fix the fields marked below." if errors else message
            return _sign_up_page(
                request,
                form,
                errors=errors,
                alert=alert or "Please check what you typed and try again.",
                status_code=422,
            )
        case SignUpRefused(status=429):
            return _sign_up_page(request, form, alert=TOO_MANY_ATTEMPTS, status_code=429)
        case SignUpRefused():
            alert = "We could not create your account. Please check what you typed and try again."
            return _sign_up_page(request, form, alert=alert, status_code=400)
        case Unavailable():
            return _sign_up_page(request, form, alert=TRY_AGAIN, status_code=503)


async def check_inbox(request: Request) -> Response:
    return _message_page(
        request,
        title="Check your inbox",
        message=(
            "We sent an email to the address you gave. Open the link in it to confirm your "
            "address; it may take a minute or two to arrive. If you already have an account, "
            "the email tells you how to log in."
        ),
        link_url="/login",
        link_text="Go to the login page",
    )


def confirmation_page(request: Request, result: Confirmation | Unavailable | None) -> Response:
    """What a confirmation link led to; None for a link without a usable token."""
    match result or Confirmation.INVALID:
        case Confirmation.CONFIRMED:
            return _message_page(
                request,
                title="Your email is confirmed",
                message="Thank you. Your account is ready: log in to continue.",
                link_url="/login",
                link_text="Log in",
                tone="success",
            )
        case Confirmation.ALREADY_CONFIRMED:
            return _message_page(
                request,
                title="Already confirmed",
                message=(
                    "This link was already used: your email address is confirmed. You can log in."
                ),
                link_url="/login",
                link_text="Log in",
                tone="success",
            )
        case Confirmation.EXPIRED:
            return _message_page(
                request,
                title="This link has expired",
                message=(
                    "Confirmation links are valid for a limited time. Ask for a new link and "
                    "we will email it to you."
                ),
                link_url="/resend-confirmation",
                link_text="Send me a new link",
                tone="error",
                status_code=410,
            )
        case Confirmation.INVALID:
            return _message_page(
                request,
                title="This link is not valid",
                message=(
                    "The link may be incomplete: copy the whole link from the email into the "
                    "address bar, or sign up again to get a new one."
                ),
                link_url="/",
                link_text="Go to the sign-up page",
                tone="error",
                status_code=400,
            )
        case Unavailable():
            return error_page(request, 503)


def _too_many_logins(seconds: int) -> str:
    minutes = -(-seconds // 60)
    wait = f"{seconds} seconds" if seconds < 60 else f"{minutes} minute{'s' * (minutes > 1)}"
    return (
        "Too many failed login attempts. For your security, logging in is paused: "
        f"try again in {wait}. If you forgot your password, you can reset it."
    )


def _login_page(
    request: Request,
    form: LoginForm | None = None,
    *,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    context = {"email": form.email if form else "", "errors": errors or {}, "alert": alert}
    return _form_page(request, "login.html", context, status_code=status_code, headers=headers)


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def log_in(request: Request) -> Response:
    form = LoginForm.from_fields(await _checked_form(request))
    if problems := form.problems():
        return _login_page(
            request,
            form,
            errors=problems,
            alert="Please fix the fields marked below.",
            status_code=422,
        )
    authz: AuthzApi = request.app.state.authz
    client_ip = request.client.host if request.client else None
    result = await authz.log_in(email=form.email, password=form.password, client_ip=client_ip)
    match result:
        case LoggedIn():
            response = RedirectResponse("/account", status_code=303)
            start_session(response, result, secure=_settings(request).uses_https)
            return response
        case LoginRefused(reason=reason, retry_after=retry_after):
            status_code, alert = _LOGIN_REFUSALS[reason]
            wait = retry_after if retry_after and retry_after.isdigit() else None
            if reason is LoginRefusal.TOO_MANY_ATTEMPTS and wait is not None:
                alert = _too_many_logins(int(wait))
            # Passed on so that a person (or a well-behaved script) knows how long to wait.
            headers = {"Retry-After": wait} if wait is not None else None
            return _login_page(request, form, alert=alert, status_code=status_code, headers=headers)
        case Unavailable():
            return _login_page(request, form, alert=TRY_AGAIN, status_code=503)


def _back_to_login(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    end_session(response, secure=_settings(request).uses_https)
    return response


async def account(request: Request) -> Response:
    session = current_session(request)
    if session is None:
        return _back_to_login(request)
    if isinstance(session, SessionUnavailable):
        return error_page(request, 503)
    registration: RegistrationApi = request.app.state.registration
    result = await registration.account(session.access_token)
    match result:
        case Account():
            return _form_page(request, "account.html", {"account": result})
        case NotSignedIn():
            return _back_to_login(request)
        case Unavailable():
            return error_page(request, 503)


async def log_out(request: Request) -> Response:
    await _checked_form(request)
    token = refresh_token(request)
    if token is not None:
        authz: AuthzApi = request.app.state.authz
        if isinstance(await authz.log_out(token), Unavailable):
            # The cookies still go; the session itself ends when its refresh token expires.
            log.warning("logout could not reach authz")
    return _back_to_login(request)


async def log_out_everywhere(request: Request) -> Response:
    await _checked_form(request)
    session = current_session(request)
    if session is None:
        return _back_to_login(request)
    if isinstance(session, SessionUnavailable):
        return error_page(request, 503)
    authz: AuthzApi = request.app.state.authz
    if isinstance(await authz.revoke_all_sessions(session.access_token), Unavailable):
        return error_page(request, 503)
    return _back_to_login(request)
