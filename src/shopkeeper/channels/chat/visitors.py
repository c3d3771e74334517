"""Who is on the other end of the widget (or of a push subscription): the workspace's public write
key, then either a verified user id (with the user token the site's server computed) or an
anonymous id that the widget chose and keeps in the browser.

The customer is found through identity resolution, like an event's: a verified user id and the
browser's anonymous id are linked (merging the anonymous profile into the user's), so a
conversation begun before signing in carries on after. An anonymous id whose profile has since
signed in is refused: knowing a browser's anonymous id must never show a signed-in customer's
conversation (the widget then starts a new anonymous id).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth.http import KeyAuthenticator
from shopkeeper.auth.models import Workspace
from shopkeeper.channels.chat.tokens import origin_allowed, token_matches
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.models import Identity
from shopkeeper.customers.resolution import IdentKey, ResolutionUnit
from shopkeeper.customers.service import canonical, identity_owner
from shopkeeper.errors import Forbidden, Invalid, Unauthorized

MAX_ID_LENGTH = 200
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]+$")


@dataclass(frozen=True, slots=True)
class Claims:
    """What the browser says about itself; nothing here is trusted until `identify` checks it."""

    write_key: str | None = None
    user_id: str | None = None
    user_token: str | None = None
    anonymous_id: str | None = None
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class Visitor:
    workspace_id: str
    user_id: str | None
    anonymous_id: str | None

    @property
    def verified(self) -> bool:
        return self.user_id is not None

    @property
    def address(self) -> str:
        """The chat address of this visitor (what an inbound interaction records)."""
        value = self.user_id or self.anonymous_id
        assert value is not None
        return value

    def identifiers(self) -> list[IdentKey]:
        keys: list[IdentKey] = []
        if self.user_id is not None:
            keys.append(("user_id", self.user_id))
        if self.anonymous_id is not None:
            keys.append(("anonymous_id", self.anonymous_id))
        return keys


def _clean(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{field}: must be a string", field=field)
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_ID_LENGTH or not _PRINTABLE.match(value):
        raise Invalid(f"{field}: 1 to {MAX_ID_LENGTH} printable characters", field=field)
    return value


def workspace_for_key(keys: KeyAuthenticator, write_key: str | None) -> str:
    """The workspace of a write key (the widget's public key); Unauthorized otherwise."""
    if not write_key or not isinstance(write_key, str):
        raise Unauthorized("write_key: required (the workspace's public write key)")
    return keys.require(write_key, "write").workspace_id


def identify(session: Session, workspace_id: str, claims: Claims) -> Visitor:
    """Check the claims against the workspace: origin, user token, ids. Writes nothing."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise Unauthorized("the key's workspace no longer exists")
    if not origin_allowed(workspace, claims.origin):
        raise Forbidden(f"origin: {claims.origin or 'none'} is not an allowed origin of this workspace")
    user_id = _clean(claims.user_id, "user_id")
    anonymous_id = _clean(claims.anonymous_id, "anonymous_id")
    if user_id is not None:
        if not claims.user_token or not isinstance(claims.user_token, str):
            raise Unauthorized("user_token: required with a user_id (HMAC-SHA256 of the user id)")
        if not token_matches(workspace, user_id, claims.user_token):
            raise Unauthorized("user_token: does not match the user id")
    elif anonymous_id is None:
        raise Invalid("anonymous_id: give a user_id with its user_token, or an anonymous_id", field="anonymous_id")
    return Visitor(workspace_id, user_id, anonymous_id)


def known(session: Session, visitor: Visitor) -> tuple[bool, str | None]:
    """Without writing: (settled, customer id). Settled when every id of the visitor already
    points at one customer, or none is known at all; otherwise ids must be linked (`resolve`).
    Most connections are settled, so they need no write transaction."""
    owners = [identity_owner(session, visitor.workspace_id, kind, value) for kind, value in visitor.identifiers()]
    found = {owner for owner in owners if owner is not None}
    if not found:
        return True, None
    if len(found) > 1 or None in owners:
        return False, None
    customer = canonical(session, visitor.workspace_id, found.pop())
    _refuse_signed_in(session, visitor, customer.id)
    return True, customer.id


def _refuse_signed_in(session: Session, visitor: Visitor, customer_id: str) -> None:
    if visitor.verified:
        return
    signed_in = session.scalar(
        select(Identity.id).where(
            Identity.workspace_id == visitor.workspace_id,
            Identity.customer_id == customer_id,
            Identity.kind == "user_id",
        )
    )
    if signed_in is not None:
        raise Forbidden("anonymous_id: this visitor has signed in; connect with the user id and its token")


def resolve(session: Session, visitor: Visitor, now: datetime, *, create: bool, trigger: str) -> str | None:
    """The visitor's customer id (following merges), linking the ids as an event would. With
    `create=False` an unknown visitor stays unknown (None): a page view with the widget on it
    makes no profile; the first message or push subscription does."""
    keys = visitor.identifiers()
    unit = ResolutionUnit(session, visitor.workspace_id, IdentityCache(0), now)
    unit.lock(keys)
    unit.prefetch(keys)
    if not create and not any(unit.knows(k) for k in keys):
        return None
    customer_id = unit.resolve(keys, visitor.user_id, trigger)
    unit.flush()
    customer = canonical(session, visitor.workspace_id, customer_id)
    _refuse_signed_in(session, visitor, customer.id)
    return customer.id
