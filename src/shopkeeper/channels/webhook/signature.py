"""The outbound webhook signature, Stripe style, and the check a receiver makes.

    Shopkeeper-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

`v1` is the hex HMAC-SHA256, under the endpoint's secret, of `"<t>.<raw body>"`. Because the
time is inside what is signed, a receiver can refuse a captured request replayed later: `verify`
refuses a timestamp further than `tolerance` seconds from its own clock. A header may carry
several `v1` values; any one that matches is enough.

Standard library only, so a receiver can copy this file as it is (docs/webhooks.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "Shopkeeper-Signature"
TIMESTAMP_HEADER = "Shopkeeper-Timestamp"
ID_HEADER = "Shopkeeper-Id"
EVENT_HEADER = "Shopkeeper-Event"
DEFAULT_TOLERANCE = 300  # seconds


class SignatureError(ValueError):
    """The request is not a genuine, fresh webhook from Shopkeeper: refuse it."""


def compute(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the Shopkeeper-Signature header."""
    return f"t={timestamp},v1={compute(secret, timestamp, body)}"


def verify(
    secret: str | Sequence[str],
    header: str | None,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> int:
    """Check a Shopkeeper-Signature header against the raw request body; return its timestamp.

    `secret` may be a list: while rotating, accept the old and the new secret. Raises
    SignatureError when the header is missing or malformed, no signature matches (a changed body
    or another secret), or the timestamp is more than `tolerance` seconds away from `now`
    (default: this machine's clock).
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the timestamp t= is not a whole number") from None
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("the header has no timestamp t=")
    if not signatures:
        raise SignatureError("the header has no v1= signature")
    secrets = [secret] if isinstance(secret, str) else list(secret)
    matched = False
    for candidate in secrets:
        expected = compute(candidate, timestamp, body)
        for given in signatures:
            # No early exit: the time taken does not tell which candidate came close.
            matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureError("no signature matches the body (wrong secret, or the body was changed)")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(f"the timestamp is {abs(current - timestamp):.0f} s away (tolerance {tolerance:.0f} s)")
    return timestamp
