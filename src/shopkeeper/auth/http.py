"""Reading credentials off a request: Bearer or basic-auth user name, looked up by digest."""

from __future__ import annotations

import base64
import binascii
import threading
import time

from shopkeeper.auth import keys as key_material
from shopkeeper.auth.principal import Principal
from shopkeeper.auth.service import principal_for_key
from shopkeeper.db.session import Database
from shopkeeper.errors import Forbidden, Unauthorized

_TTL_SECONDS = 10.0


def credential_from_header(value: str | None) -> str | None:
    """`Bearer <key>`, or HTTP basic auth with the key as user name (what Segment clients send)."""
    if not value:
        return None
    scheme, _, param = value.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return param.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(param.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("the Authorization header is not valid basic auth") from None
        user, _, _ = decoded.partition(":")
        return user or None
    raise Unauthorized(f"unsupported Authorization scheme {scheme!r}; use Bearer or Basic")


class KeyAuthenticator:
    """Keys are checked on every request; valid ones are remembered briefly so ingestion does
    not pay a query per request. Revocation clears the memory in this process at once and
    reaches other processes within the TTL."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def lookup(self, plain: str) -> Principal | None:
        digest = key_material.digest(plain)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.db.session() as session:
            principal = principal_for_key(session, plain)
        if principal is not None:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (principal, now + _TTL_SECONDS)
        return principal

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def require(self, plain: str | None, kind: str) -> Principal:
        if not plain:
            what = "a write key as the basic-auth user name" if kind == "write" else "a secret key (Bearer)"
            raise Unauthorized(f"authentication required: send {what}")
        principal = self.lookup(plain)
        if principal is None:
            raise Unauthorized("the key is not valid or was revoked")
        if principal.key_kind != kind:
            raise Forbidden(f"this endpoint needs a {kind} key, not a {principal.key_kind} key")
        return principal
