"""The one canonical spelling of an email address, shared by sign-up and login."""

from email_validator import EmailNotValidError, validate_email

__all__ = ["EmailNotValidError", "canonical_email"]


def canonical_email(address: str) -> str:
    """NFC-normalised, lower-cased, IDNA domain; raises EmailNotValidError.

    Case and Unicode-normalisation variants of an address map to the same string, so a unique
    index on it stops them from creating a second account, and login finds the account.
    """
    result = validate_email(address.strip(), check_deliverability=False)
    return result.normalized.lower()
