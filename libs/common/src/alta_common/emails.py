"""The one canonical spelling of an email address, shared by sign-up and login."""

from email_validator import EmailNotValidError, validate_email

__all__ = ["EmailNotValidError", "canonical_email"]


def canonical_email(address: str) -> str:
    """NFC-normalised local part, ASCII (IDNA) domain, lower-cased; raises EmailNotValidError.

    Case, Unicode-normalisation and IDNA variants of an address map to the same string, so a
    unique index on it stops them from creating a second account, and login finds the account.
    The domain is kept in the ASCII form every mail relay accepts.
    """
    result = validate_email(address.strip(), check_deliverability=False)
    return f"{result.local_part}@{result.ascii_domain}".lower()
