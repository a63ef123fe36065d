"""The session: authz's access JWT and opaque refresh token in HttpOnly cookies, renewed
transparently by `SessionMiddleware` when the access token has run out.

Handlers call `current_session(request)`: `SignedIn` (verified; `access_token` is the one to
send to the services), `SessionUnavailable` (authz could not be asked: show "try again", do not
log the person out) or None (not signed in: send to /login). `session_token(request)` is the
access token as the handler sees it (already renewed by the middleware).
"""

from dataclasses import dataclass, field

import jwt
import structlog
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alta_common.tokens import InvalidToken, JwtVerifier, KeysUnavailable, Principal
from alta_web_bff.backend import AuthzApi, LoggedIn, NotSignedIn, Unavailable

log = structlog.get_logger("alta.web_bff.session")

ACCESS_COOKIE = "alta_session"
REFRESH_COOKIE = "alta_refresh"
# Paths that never need a session: no token check, and above all no refresh, for them.
_SESSIONLESS_PREFIXES = ("/static/", "/healthz", "/readyz", "/metrics")
_STATE_KEY = "alta_session"


def cookie_name(name: str, *, secure: bool) -> str:
    """`__Host-` under https: the browser then insists on Secure, Path=/ and no Domain, so no
    sibling subdomain can plant or overwrite the cookie."""
    return f"__Host-{name}" if secure else name


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    access_token: str = field(repr=False)


@dataclass(frozen=True)
class SessionUnavailable:
    """The access token has run out and authz could not renew it right now."""


SessionState = SignedIn | SessionUnavailable | None


def _secure(connection: HTTPConnection) -> bool:
    return bool(connection.app.state.settings.uses_https)


def session_token(connection: HTTPConnection) -> str | None:
    return connection.cookies.get(cookie_name(ACCESS_COOKIE, secure=_secure(connection))) or None


def refresh_token(connection: HTTPConnection) -> str | None:
    return connection.cookies.get(cookie_name(REFRESH_COOKIE, secure=_secure(connection))) or None


def session_binding(connection: HTTPConnection) -> str:
    """What CSRF tokens are bound to: the session id (`sid`), which stays the same while the
    access token is renewed, or else the raw cookie. Read unverified: it only needs to differ
    between sessions, and a forged value cannot get our signature anyway."""
    token = session_token(connection) or ""
    try:
        sid = jwt.decode(token, options={"verify_signature": False}).get("sid")
    except jwt.PyJWTError:
        return token
    return sid if isinstance(sid, str) else token


def current_session(request: Request) -> SessionState:
    state: SessionState = request.scope.get("state", {}).get(_STATE_KEY)
    return state


def start_session(response: Response, tokens: LoggedIn, *, secure: bool) -> None:
    for name, value, max_age in (
        (ACCESS_COOKIE, tokens.access_token, tokens.expires_in),
        (REFRESH_COOKIE, tokens.refresh_token, tokens.refresh_expires_in),
    ):
        response.set_cookie(
            cookie_name(name, secure=secure),
            value,
            max_age=max_age,
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )


def end_session(response: Response, *, secure: bool) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(
            cookie_name(name, secure=secure), path="/", secure=secure, httponly=True, samesite="lax"
        )


def _with_cookies(
    headers: list[tuple[bytes, bytes]], replaced: dict[str, str]
) -> list[tuple[bytes, bytes]]:
    """The request headers with some cookies replaced, so handlers see the renewed tokens."""
    cookies: dict[str, str] = {}
    for key, raw in headers:
        if key == b"cookie":
            cookies.update(cookie_parser(raw.decode("latin-1")))
    cookies.update(replaced)
    kept = [(k, v) for k, v in headers if k != b"cookie"]
    joined = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return [*kept, (b"cookie", joined.encode("latin-1"))]


class SessionMiddleware:
    """Verifies the access cookie and, when it is missing or no longer valid but a refresh
    cookie is there, exchanges the refresh token with authz: the person stays signed in for
    as long as the refresh token is valid. The new cookies go out with whatever the handler
    answers (unless the handler itself set or cleared the session, as logout does)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_SESSIONLESS_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        secure = _secure(request)
        state, renewed, ended = await self._session(request)
        scope.setdefault("state", {})[_STATE_KEY] = state
        if renewed is not None:
            scope["headers"] = _with_cookies(
                list(scope["headers"]),
                {
                    cookie_name(ACCESS_COOKIE, secure=secure): renewed.access_token,
                    cookie_name(REFRESH_COOKIE, secure=secure): renewed.refresh_token,
                },
            )
        if renewed is None and not ended:
            await self.app(scope, receive, send)
            return
        outgoing = Response()
        if renewed is not None:
            start_session(outgoing, renewed, secure=secure)
        else:
            end_session(outgoing, secure=secure)
        cookie_headers = [(k, v) for k, v in outgoing.raw_headers if k == b"set-cookie"]

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                set_by_handler = " ".join(headers.getlist("set-cookie"))
                if cookie_name(ACCESS_COOKIE, secure=secure) + "=" not in set_by_handler:
                    for key, value in cookie_headers:
                        headers.append(key.decode("latin-1"), value.decode("latin-1"))
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    async def _session(self, request: Request) -> tuple[SessionState, LoggedIn | None, bool]:
        """(state for the handler, renewed tokens to set, whether to clear the cookies)."""
        verifier: JwtVerifier = request.app.state.jwt_verifier
        access = session_token(request)
        if access is not None:
            try:
                return SignedIn(await verifier.verify(access), access), None, False
            except KeysUnavailable:
                return SessionUnavailable(), None, False
            except InvalidToken as exc:
                log.info("session token rejected", reason=str(exc))
        refresh = refresh_token(request)
        if refresh is None:
            return None, None, access is not None
        authz: AuthzApi = request.app.state.authz
        result = await authz.refresh(refresh)
        match result:
            case LoggedIn():
                try:
                    principal = await verifier.verify(result.access_token)
                except (InvalidToken, KeysUnavailable) as exc:
                    # The refresh token is spent: the new cookies must still reach the browser.
                    log.warning("renewed token not accepted", error=repr(exc))
                    return SessionUnavailable(), result, False
                log.info("session renewed")
                return SignedIn(principal, result.access_token), result, False
            case NotSignedIn():
                return None, None, True
            case Unavailable():
                return SessionUnavailable(), None, False
