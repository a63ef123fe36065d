"""Typed calls to registration and authz, each answer mapped to an outcome the pages act on.

Nothing here raises for a failed call: a service that cannot be reached, times out, answers with
a server error or with a body outside its contract becomes `Unavailable`, which the pages show
as "try again in a moment". Request bodies and tokens are never logged.
"""

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = structlog.get_logger("alta.web_bff.backend")


@dataclass(frozen=True)
class Unavailable:
    """The service could not be reached, timed out, or did not answer as agreed."""


class _ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str = "error"
    message: str = ""
    fields: dict[str, str] = Field(default_factory=dict)


class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error: _ErrorDetail


def error_detail(response: httpx.Response) -> _ErrorDetail:
    try:
        return _ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        return _ErrorDetail()


def unexpected(service: str, response: httpx.Response) -> Unavailable:
    log.warning(
        "unexpected backend answer",
        service=service,
        path=response.request.url.path,
        status=response.status_code,
    )
    return Unavailable()


async def send(
    http: httpx.AsyncClient,
    service: str,
    method: str,
    url: str,
    *,
    json: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response | Unavailable:
    try:
        response = await http.request(method, url, json=json, headers=headers)
    except httpx.HTTPError as exc:
        log.warning(
            "backend unreachable",
            service=service,
            path=httpx.URL(url).path,
            error=type(exc).__name__,
        )
        return Unavailable()
    if response.status_code >= 500:
        return unexpected(service, response)
    return response


@dataclass(frozen=True)
class SignUpAccepted:
    """Sent for new and already registered addresses alike: the page must not tell them apart."""


@dataclass(frozen=True)
class SignUpInvalid:
    fields: dict[str, str]
    message: str


@dataclass(frozen=True)
class SignUpRefused:
    status: int


SignUpResult = SignUpAccepted | SignUpInvalid | SignUpRefused | Unavailable


class Confirmation(enum.Enum):
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already_confirmed"
    EXPIRED = "expired"
    INVALID = "invalid"


class _ConfirmationBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["confirmed", "already_confirmed"]


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


@dataclass(frozen=True)
class Account:
    email: str
    name: str
    status: Literal["pending", "confirmed"]
    registered_at: datetime
    confirmed_at: datetime | None


class AccountBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: str
    name: str
    status: Literal["pending", "confirmed"]
    registered_at: datetime
    confirmed_at: datetime | None = None


@dataclass(frozen=True)
class NotSignedIn:
    """Registration refused the access token."""


AccountResult = Account | NotSignedIn | Unavailable


class RegistrationApi:
    def __init__(self, http: httpx.AsyncClient, *, base_url: str) -> None:
        self._http = http
        self._base_url = base_url

    async def sign_up(self, *, email: str, name: str, password: str) -> SignUpResult:
        response = await send(
            self._http,
            "registration",
            "POST",
            f"{self._base_url}/registrations",
            json={"email": email, "name": name, "password": password},
        )
        if isinstance(response, Unavailable):
            return response
        if response.is_success:
            return SignUpAccepted()
        if response.status_code == 422:
            error = error_detail(response)
            return SignUpInvalid(fields=error.fields, message=error.message)
        return SignUpRefused(status=response.status_code)

    async def confirm(self, token: str) -> Confirmation | Unavailable:
        response = await send(
            self._http,
            "registration",
            "POST",
            f"{self._base_url}/confirmations",
            json={"token": token},
        )
        if isinstance(response, Unavailable):
            return response
        if response.status_code == 200:
            try:
                body = _ConfirmationBody.model_validate_json(response.content)
            except ValidationError:
                return unexpected("registration", response)
            return Confirmation(body.status)
        if response.status_code == 410:
            return Confirmation.EXPIRED
        if response.status_code in (400, 404, 422):
            return Confirmation.INVALID
        return unexpected("registration", response)

    async def account(self, access_token: str) -> AccountResult:
        response = await send(
            self._http,
            "registration",
            "GET",
            f"{self._base_url}/users/me",
            headers=bearer(access_token),
        )
        if isinstance(response, Unavailable):
            return response
        if response.status_code == 200:
            try:
                body = AccountBody.model_validate_json(response.content)
            except ValidationError:
                return unexpected("registration", response)
            return Account(**body.model_dump())
        # 404: the account behind a still valid token no longer exists.
        if response.status_code in (401, 403, 404):
            return NotSignedIn()
        return unexpected("registration", response)


@dataclass(frozen=True)
class LoggedIn:
    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str = field(repr=False)
    refresh_expires_in: int


class LoginRefusal(enum.Enum):
    INVALID_CREDENTIALS = "invalid_credentials"
    EMAIL_NOT_CONFIRMED = "email_not_confirmed"
    INVALID_INPUT = "invalid_input"
    TOO_MANY_ATTEMPTS = "too_many_attempts"


@dataclass(frozen=True)
class LoginRefused:
    reason: LoginRefusal
    retry_after: str | None = None


LoginResult = LoggedIn | LoginRefused | Unavailable


class _TokenBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1)
    token_type: Literal["Bearer"]
    expires_in: int = Field(gt=0)
    refresh_token: str = Field(min_length=1)
    refresh_expires_in: int = Field(gt=0)


class AuthzApi:
    def __init__(self, http: httpx.AsyncClient, *, base_url: str) -> None:
        self._http = http
        self._base_url = base_url

    @property
    def jwks_url(self) -> str:
        return f"{self._base_url}/.well-known/jwks.json"

    def _tokens(self, response: httpx.Response) -> LoggedIn | Unavailable:
        try:
            body = _TokenBody.model_validate_json(response.content)
        except ValidationError:
            return unexpected("authz", response)
        return LoggedIn(
            access_token=body.access_token,
            expires_in=body.expires_in,
            refresh_token=body.refresh_token,
            refresh_expires_in=body.refresh_expires_in,
        )

    async def log_in(self, *, email: str, password: str, client_ip: str | None) -> LoginResult:
        # authz counts failed logins per client address; it believes this header only from
        # the networks in its TRUSTED_PROXIES (ours).
        headers = {"X-Forwarded-For": client_ip} if client_ip else None
        response = await send(
            self._http,
            "authz",
            "POST",
            f"{self._base_url}/login",
            json={"email": email, "password": password},
            headers=headers,
        )
        if isinstance(response, Unavailable):
            return response
        if response.status_code == 200:
            return self._tokens(response)
        if response.status_code == 401:
            return LoginRefused(LoginRefusal.INVALID_CREDENTIALS)
        if response.status_code == 403:
            # Any other refusal reads as wrong credentials, so it reveals nothing about the account.
            confirmed = error_detail(response).code != "email_not_confirmed"
            return LoginRefused(
                LoginRefusal.INVALID_CREDENTIALS if confirmed else LoginRefusal.EMAIL_NOT_CONFIRMED
            )
        if response.status_code == 422:
            return LoginRefused(LoginRefusal.INVALID_INPUT)
        if response.status_code == 429:
            return LoginRefused(
                LoginRefusal.TOO_MANY_ATTEMPTS, retry_after=response.headers.get("retry-after")
            )
        return unexpected("authz", response)

    async def refresh(self, refresh_token: str) -> LoggedIn | NotSignedIn | Unavailable:
        response = await send(
            self._http,
            "authz",
            "POST",
            f"{self._base_url}/token/refresh",
            json={"refresh_token": refresh_token},
        )
        if isinstance(response, Unavailable):
            return response
        if response.status_code == 200:
            return self._tokens(response)
        if response.status_code in (401, 422):
            return NotSignedIn()
        return unexpected("authz", response)

    async def log_out(self, refresh_token: str) -> Unavailable | None:
        response = await send(
            self._http,
            "authz",
            "POST",
            f"{self._base_url}/logout",
            json={"refresh_token": refresh_token},
        )
        if isinstance(response, Unavailable):
            return response
        return None if response.status_code == 204 else unexpected("authz", response)

    async def revoke_all_sessions(self, access_token: str) -> NotSignedIn | Unavailable | None:
        response = await send(
            self._http,
            "authz",
            "POST",
            f"{self._base_url}/sessions/revoke-all",
            headers=bearer(access_token),
        )
        if isinstance(response, Unavailable):
            return response
        if response.status_code == 200:
            return None
        if response.status_code in (401, 403):
            return NotSignedIn()
        return unexpected("authz", response)
