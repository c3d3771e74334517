"""Twilio's webhook signature: base64(HMAC-SHA1(auth_token, url + every form field's name and
value, sorted by name)). Twilio signs the exact URL it called, so behind a proxy the check must
use the public address (`Settings.public_url`), not the one the request arrived on."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence

HEADER = "X-Twilio-Signature"


def sign(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    # Sorted by name; a name given several times keeps its values in sorted order too (Twilio's
    # own libraries sort the values as well).
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(auth_token: str, urls: Sequence[str], params: Sequence[tuple[str, str]], signature: str | None) -> bool:
    """True when `signature` signs `params` at any of `urls` (compared in constant time)."""
    if not signature or not auth_token:
        return False
    given = signature.encode()
    found = False
    for url in urls:
        # No early exit: every candidate costs the same, whichever one matches.
        found |= hmac.compare_digest(sign(auth_token, url, params).encode(), given)
    return found
