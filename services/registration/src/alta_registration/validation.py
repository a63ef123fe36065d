"""Sign-up input rules: canonical email, name, and password strength."""

import gzip
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from alta_common.emails import EmailNotValidError, canonical_email
from alta_common.errors import ApiError
from alta_common.requests import string_fields

MAX_EMAIL_LENGTH = 254
NAME_LENGTH = (1, 100)
PASSWORD_LENGTH = (8, 128)


@dataclass(frozen=True)
class SignUp:
    email: str
    name: str
    password: str


@cache
def common_passwords() -> frozenset[str]:
    raw = files("alta_registration.data").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(raw).decode().split())


def _email_error(email: str) -> str | None:
    if len(email) > MAX_EMAIL_LENGTH:
        return f"Use an email address of at most {MAX_EMAIL_LENGTH} characters."
    try:
        canonical_email(email)
    except EmailNotValidError:
        return "Enter a valid email address, like name@example.com."
    return None


def _name_error(name: str) -> str | None:
    low, high = NAME_LENGTH
    if not low <= len(name) <= high:
        return f"Enter a name of {low} to {high} characters."
    # Control, format, surrogate, private-use and unassigned code points (U+FFFF and the like)
    # have no place in a name, and some cannot travel in an SQS message at all.
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in name):
        return "The name contains characters that cannot be used."
    return None


def _password_error(password: str) -> str | None:
    low, high = PASSWORD_LENGTH
    if not low <= len(password) <= high:
        return f"Choose a password of {low} to {high} characters."
    if password.lower().strip() in common_passwords():
        return "This password is too common; choose one that is harder to guess."
    return None


def parse_sign_up(data: dict[str, Any]) -> SignUp:
    """The validated sign-up, or a 422 whose `fields` say what to fix in each field."""
    fields = string_fields(data, ("email", "name", "password"))
    name = unicodedata.normalize("NFC", fields["name"].strip())
    errors = {
        field: message
        for field, message in (
            ("email", _email_error(fields["email"])),
            ("name", _name_error(name)),
            ("password", _password_error(fields["password"])),
        )
        if message
    }
    if errors:
        raise _invalid(errors)
    return SignUp(email=canonical_email(fields["email"]), name=name, password=fields["password"])


def _invalid(errors: dict[str, str]) -> ApiError:
    return ApiError(422, "invalid_input", "Some fields need attention.", fields=errors)


def parse_email(data: dict[str, Any]) -> str:
    """The canonical address of a resend or reset request, or a 422."""
    email = string_fields(data, ("email",))["email"]
    if message := _email_error(email):
        raise _invalid({"email": message})
    return canonical_email(email)


def parse_name(data: dict[str, Any]) -> str:
    name = unicodedata.normalize("NFC", string_fields(data, ("name",))["name"].strip())
    if message := _name_error(name):
        raise _invalid({"name": message})
    return name


def check_new_password(password: str, field: str = "password") -> str:
    if message := _password_error(password):
        raise _invalid({field: message})
    return password
