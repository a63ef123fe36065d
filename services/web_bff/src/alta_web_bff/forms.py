"""Reading the posted forms strictly, and the light checks done before calling a backend.

Registration is the real validator; these checks only spare it requests that cannot succeed and
give the person a message next to the field at once.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# Our largest form has four fields; anything far beyond that was not sent by our pages.
MAX_FIELDS = 10

EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 100
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


async def read_form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form; 415 for another content type, 400 when malformed.

    Parsed strictly with the standard library: browsers always send well-formed, percent-encoded
    UTF-8, so anything else is a client we do not serve. The body size is capped by the shared
    middleware, which answers 413.
    """
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise HTTPException(415)
    body = await request.body()
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError as exc:
        raise HTTPException(400) from exc
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise HTTPException(400)
    return fields


def email_problem(email: str) -> str | None:
    local, _, domain = email.rpartition("@")
    if not email:
        return "Enter your email address."
    if len(email) > EMAIL_MAX_LENGTH:
        return f"Use at most {EMAIL_MAX_LENGTH} characters."
    if not local or not domain:
        return "Enter an email address like name@example.com."
    return None


def new_password_problem(password: str) -> str | None:
    if not password:
        return "Choose a password."
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"Use at least {PASSWORD_MIN_LENGTH} characters."
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"Use at most {PASSWORD_MAX_LENGTH} characters."
    return None


def _password_problem(password: str) -> str | None:
    if not password:
        return "Enter your password."
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"Use at most {PASSWORD_MAX_LENGTH} characters."
    return None


@dataclass(frozen=True)
class SignUpForm:
    email: str
    name: str
    password: str = field(repr=False)

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> "SignUpForm":
        # Spaces around an address or a name are slips; a password is taken exactly as typed.
        return cls(
            email=fields.get("email", "").strip(),
            name=fields.get("name", "").strip(),
            password=fields.get("password", ""),
        )

    def problems(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if email_error := email_problem(self.email):
            problems["email"] = email_error
        if not self.name:
            problems["name"] = "Enter your name."
        elif len(self.name) > NAME_MAX_LENGTH:
            problems["name"] = f"Use at most {NAME_MAX_LENGTH} characters."
        if password_problem := new_password_problem(self.password):
            problems["password"] = password_problem
        return problems


@dataclass(frozen=True)
class LoginForm:
    email: str
    password: str = field(repr=False)

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> "LoginForm":
        return cls(email=fields.get("email", "").strip(), password=fields.get("password", ""))

    def problems(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if email_error := email_problem(self.email):
            problems["email"] = email_error
        if password_problem := _password_problem(self.password):
            problems["password"] = password_problem
        return problems
