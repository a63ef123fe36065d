"""Typed calls for the account lifecycle and the admin console, mapped to page outcomes.

Like `backend`, nothing here raises for a failed call: an unreachable service or an answer
outside the contract becomes `Unavailable`. Tokens and passwords are never logged.
"""

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from alta_web_bff.backend import (
    Account,
    AccountBody,
    NotSignedIn,
    Unavailable,
    bearer,
    error_detail,
    send,
    unexpected,
)


class ResetLink(enum.Enum):
    USABLE = "usable"
    USED = "used"
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True)
class Accepted:
    """Sent whether or not the address has an account: the page must not tell them apart."""


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Refused:
    """Registration refused the input; `fields` say what to fix in each field."""

    status: int
    message: str
    fields: dict[str, str]


@dataclass(frozen=True)
class Forbidden:
    """Signed in, but the policy does not allow this."""


class _SignUpRow(AccountBody):
    id: uuid.UUID


class _SignUpPageBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[_SignUpRow]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True)
class SignUpRow:
    id: uuid.UUID
    email: str
    name: str
    status: Literal["pending", "confirmed"]
    registered_at: datetime
    confirmed_at: datetime | None


@dataclass(frozen=True)
class SignUpPage:
    rows: list[SignUpRow]
    total: int
    page: int
    per_page: int


def _refused(response: httpx.Response) -> Refused:
    detail = error_detail(response)
    return Refused(status=response.status_code, message=detail.message, fields=detail.fields)


class AccountsApi:
    """registration's account lifecycle and admin list endpoints."""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str) -> None:
        self._http = http
        self._base_url = base_url

    async def _post(
        self, path: str, body: dict[str, object], access_token: str | None = None
    ) -> httpx.Response | Unavailable:
        return await send(
            self._http,
            "registration",
            "POST",
            f"{self._base_url}{path}",
            json=body,
            headers=bearer(access_token) if access_token else None,
        )

    async def _accepted(self, path: str, email: str) -> Accepted | Refused | Unavailable:
        response = await self._post(path, {"email": email})
        if isinstance(response, Unavailable):
            return response
        if response.status_code == 202:
            return Accepted()
        return _refused(response)

    async def resend_confirmation(self, email: str) -> Accepted | Refused | Unavailable:
        return await self._accepted("/confirmations/resend", email)

    async def request_password_reset(self, email: str) -> Accepted | Refused | Unavailable:
        return await self._accepted("/password-resets", email)

    def _reset_link(self, response: httpx.Response) -> ResetLink | None:
        return {
            400: ResetLink.INVALID,
            404: ResetLink.INVALID,
            409: ResetLink.USED,
            410: ResetLink.EXPIRED,
        }.get(response.status_code)

    async def check_reset_link(self, token: str) -> ResetLink | Unavailable:
        response = await self._post("/password-resets/check", {"token": token})
        if isinstance(response, Unavailable):
            return response
        if response.status_code == 200:
            return ResetLink.USABLE
        return self._reset_link(response) or unexpected("registration", response)

    async def reset_password(
        self, token: str, password: str
    ) -> Done | ResetLink | Refused | Unavailable:
        response = await self._post(
            "/password-resets/complete", {"token": token, "password": password}
        )
        if isinstance(response, Unavailable):
            return response
        if response.status_code == 200:
            return Done()
        if response.status_code == 422:
            return _refused(response)
        return self._reset_link(response) or unexpected("registration", response)

    async def change_name(
        self, access_token: str, name: str
    ) -> Account | Refused | NotSignedIn | Unavailable:
        response = await send(
            self._http,
            "registration",
            "PATCH",
            f"{self._base_url}/users/me",
            json={"name": name},
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
        if response.status_code == 422:
            return _refused(response)
        if response.status_code in (401, 403, 404):
            return NotSignedIn()
        return unexpected("registration", response)

    async def change_password(
        self, access_token: str, *, current_password: str, new_password: str
    ) -> Done | Refused | NotSignedIn | Unavailable:
        response = await self._post(
            "/users/me/password",
            {"current_password": current_password, "new_password": new_password},
            access_token,
        )
        if isinstance(response, Unavailable):
            return response
        if response.status_code == 200:
            return Done()
        detail = error_detail(response)
        if response.status_code == 422 or detail.code in ("wrong_password", "conflict"):
            return _refused(response)
        if response.status_code in (401, 403, 404):
            return NotSignedIn()
        return unexpected("registration", response)

    async def list_sign_ups(
        self, access_token: str, *, search: str, page: int, per_page: int
    ) -> SignUpPage | Forbidden | NotSignedIn | Unavailable:
        response = await send(
            self._http,
            "registration",
            "GET",
            str(
                httpx.URL(
                    f"{self._base_url}/admin/registrations",
                    params={"q": search, "page": page, "per_page": per_page},
                )
            ),
            headers=bearer(access_token),
        )
        if isinstance(response, Unavailable):
            return response
        if response.status_code == 200:
            try:
                body = _SignUpPageBody.model_validate_json(response.content)
            except ValidationError:
                return unexpected("registration", response)
            rows = [SignUpRow(**row.model_dump()) for row in body.items]
            return SignUpPage(rows=rows, total=body.total, page=body.page, per_page=body.per_page)
        if response.status_code == 403:
            return Forbidden()
        if response.status_code == 401:
            return NotSignedIn()
        return unexpected("registration", response)


class _DeliveryTimes(BaseModel):
    model_config = ConfigDict(extra="ignore")

    confirmation_sent_at: datetime | None = None
    crm_synced_at: datetime | None = None


class _LookupBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    deliveries: dict[uuid.UUID, _DeliveryTimes]


@dataclass(frozen=True)
class DeliveryTimes:
    confirmation_sent_at: datetime | None = None
    crm_synced_at: datetime | None = None


class DeliveriesApi:
    """One consumer's admin-only delivery lookup (email_sender or crm_integration)."""

    def __init__(self, http: httpx.AsyncClient, *, service: str, base_url: str) -> None:
        self._http = http
        self._service = service
        self._base_url = base_url

    async def lookup(
        self, access_token: str, user_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, DeliveryTimes] | Unavailable:
        """Times by account; accounts with nothing delivered yet are missing."""
        if not user_ids:
            return {}
        response = await send(
            self._http,
            self._service,
            "POST",
            f"{self._base_url}/deliveries/lookup",
            json={"user_ids": [str(user_id) for user_id in user_ids]},
            headers=bearer(access_token),
        )
        if isinstance(response, Unavailable):
            return response
        if response.status_code != 200:
            return unexpected(self._service, response)
        try:
            body = _LookupBody.model_validate_json(response.content)
        except ValidationError:
            return unexpected(self._service, response)
        return {
            user_id: DeliveryTimes(times.confirmation_sent_at, times.crm_synced_at)
            for user_id, times in body.deliveries.items()
        }
