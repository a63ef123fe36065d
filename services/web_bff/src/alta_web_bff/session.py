"""The session cookie: the access token authz issued, readable only by the server."""

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "alta_session"


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def start_session(response: Response, access_token: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        access_token,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def end_session(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
