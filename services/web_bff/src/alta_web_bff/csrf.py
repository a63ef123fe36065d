"""CSRF protection for every form: a signed double-submit token and an Origin/Referer check.

The token is `<nonce>.<signature>`, sent both in the HttpOnly `alta_csrf` cookie (`__Host-`
under https) and in the form's hidden `csrf_token` field. The signature covers the nonce and the
current session (its `sid`, which survives the access token's renewal), so a token planted by
another site (for example through a sibling subdomain that can write our cookies) is useless:
it was not signed with our key for this person's session.
"""

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from alta_web_bff.session import cookie_name, session_binding
from alta_web_bff.settings import origin_of

CSRF_COOKIE = "alta_csrf"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class CsrfToken:
    value: str
    # A new token must reach the browser's cookie along with the page carrying it.
    is_new: bool


class CsrfGuard:
    def __init__(self, *, secret: bytes, public_origin: str, secure_cookie: bool) -> None:
        self._secret = secret
        self._public_origin = public_origin
        self._secure_cookie = secure_cookie
        self._cookie = cookie_name(CSRF_COOKIE, secure=secure_cookie)

    def token_for(self, request: Request) -> CsrfToken:
        """The token for a form on this page: the cookie's while it is still valid, else a new one.

        Reusing it keeps forms open in other tabs working.
        """
        current = request.cookies.get(self._cookie, "")
        if self._signed_for_session(request, current):
            return CsrfToken(current, is_new=False)
        nonce = secrets.token_urlsafe(32)
        return CsrfToken(f"{nonce}.{self._signature(request, nonce)}", is_new=True)

    def remember(self, response: Response, token: CsrfToken) -> None:
        if token.is_new:
            response.set_cookie(
                self._cookie,
                token.value,
                path="/",
                secure=self._secure_cookie,
                httponly=True,
                samesite="lax",
            )

    def accepts(self, request: Request, submitted: str | None) -> bool:
        """Whether a posted form came from our own page in this browser."""
        cookie = request.cookies.get(self._cookie, "")
        return (
            self.same_origin(request)
            and bool(submitted)
            and hmac.compare_digest(cookie.encode(), (submitted or "").encode())
            and self._signed_for_session(request, cookie)
        )

    def same_origin(self, request: Request) -> bool:
        # Browsers send Origin on every cross-site POST; Referer is the fallback for old ones.
        source = request.headers.get("origin") or request.headers.get("referer")
        return source is None or origin_of(source) == self._public_origin

    def _signed_for_session(self, request: Request, token: str) -> bool:
        nonce, _, signature = token.partition(".")
        return bool(nonce) and hmac.compare_digest(
            signature.encode(), self._signature(request, nonce).encode()
        )

    def _signature(self, request: Request, nonce: str) -> str:
        message = b"\0".join([nonce.encode(), session_binding(request).encode()])
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
