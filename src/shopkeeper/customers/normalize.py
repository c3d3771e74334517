"""Identifier normalisation: the same person's email or phone always becomes the same string."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from shopkeeper.customers.models import IDENTITY_KIND_PREFIXES, IDENTITY_KINDS

MAX_IDENTITY_LENGTH = 512


@lru_cache(maxsize=65536)
def normalise_email(raw: str) -> str | None:
    """Trimmed, lower-cased and syntactically valid, or None (then no identity is linked)."""
    candidate = raw.strip().lower()
    if not candidate or len(candidate) > 320:
        return None
    try:
        return validate_email(candidate, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


@lru_cache(maxsize=65536)
def normalise_phone(raw: str, default_region: str | None = None) -> str | None:
    """E.164 via phonenumbers; a national number needs the workspace's default region."""
    candidate = raw.strip()
    if not candidate:
        return None
    try:
        number = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_identity_kind(kind: str) -> bool:
    if kind in IDENTITY_KINDS:
        return True
    return any(kind.startswith(p) and len(kind) > len(p) for p in IDENTITY_KIND_PREFIXES)


def normalise_identity(kind: str, raw: object, default_region: str | None = None) -> str | None:
    """The stored form of an identifier of `kind`, or None when `raw` cannot be one."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    text = str(raw)
    if kind == "email":
        return normalise_email(text)
    if kind == "phone":
        return normalise_phone(text, default_region)
    value = text.strip()
    if not value or len(value) > MAX_IDENTITY_LENGTH:
        return None
    # Social handles are case-insensitive on every network we know; external ids are not.
    return value.lower() if kind.startswith("social:") else value
