"""Signed, expiring links that let one customer act on their own consent without logging in.

A token reads `<workspace id>.<signed payload>`. The workspace id in clear only says whose
`signing_secret` checks the signature; nothing inside the payload is trusted (or even
decompressed) before that check passes. The signed payload names the workspace again, the
customer, the purpose ("preferences", "unsubscribe", "confirm"), purpose-specific data (channel
and topic) and the expiry time.

The expiry is inside the signed payload, rather than itsdangerous's own timestamp checked against
a `max_age` at verification, so that each link carries the lifetime it was minted with, and so
that time comes from `clock` (tests move time instead of waiting 60 days).

Every way a link can be wrong raises a `LinkError` subclass with a status (400 or 410) and words
for a person; the public pages turn it into a page, never a traceback.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent.models import ALL_TOPICS
from shopkeeper.customers.models import Customer
from shopkeeper.customers.service import profile_ids
from shopkeeper.errors import NotFound, ShopkeeperError

Purpose = Literal["preferences", "unsubscribe", "confirm"]
PURPOSES: tuple[Purpose, ...] = ("preferences", "unsubscribe", "confirm")
LIFETIMES: dict[Purpose, timedelta] = {
    "preferences": timedelta(days=60),
    "unsubscribe": timedelta(days=60),
    "confirm": timedelta(days=7),
}
# Where each purpose's page lives (see consent/public.py).
PATHS: dict[Purpose, str] = {
    "preferences": "/preferences",
    "unsubscribe": "/unsubscribe",
    "confirm": "/consent/confirm",
}
# Bumping the salt's version invalidates every link ever sent; do it only on a format change.
_SALT = "shopkeeper.consent-link.v1"
# Real tokens are about 300 characters; anything far longer is not worth parsing.
_MAX_TOKEN = 2048
# What a workspace id can look like: checked before it goes near the database.
_WORKSPACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class LinkError(ShopkeeperError):
    """A link that cannot be used; `title` and `advice` are for the person who clicked it."""

    code = "invalid_link"
    status = 400
    title = "This link does not work"
    advice = (
        "Open the link again from the most recent message we sent you, "
        "making sure the whole address was copied into your browser."
    )


class LinkInvalid(LinkError):
    """Malformed, tampered with, or signed for a workspace that does not exist."""


class LinkWrongPurpose(LinkError):
    code = "wrong_link"
    title = "This link is meant for another page"
    advice = "Open the link exactly as it appears in the message we sent you."


class LinkExpired(LinkError):
    code = "expired_link"
    status = 410
    title = "This link has expired"
    advice = "Links in our messages stop working after a while, to protect you. Use the link in a more recent message."


class LinkCustomerGone(LinkError):
    code = "gone"
    status = 410
    title = "There is nothing to manage here any more"
    advice = (
        "We no longer hold a profile for this link (for example because it was erased at your request). "
        "Nothing will be sent to you through it."
    )


@dataclass(frozen=True, slots=True)
class Link:
    """A verified token: whose it is, what it may do, and until when."""

    workspace: Workspace
    customer: Customer  # the live profile (a merged-away id speaks for its survivor)
    customer_ids: list[str]  # the profile and every id merged into it
    purpose: Purpose
    data: dict[str, Any]
    expires_at: datetime
    expired: bool

    @property
    def channel(self) -> str:
        return str(self.data.get("ch", "email"))

    @property
    def topic(self) -> str:
        return str(self.data.get("t", ALL_TOPICS))


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})


def make_token(
    workspace: Workspace,
    customer_id: str,
    purpose: Purpose,
    now: datetime,
    *,
    data: Mapping[str, Any] | None = None,
    lifetime: timedelta | None = None,
) -> str:
    """A token for `purpose`, valid from `now` for `lifetime` (the purpose's default if None)."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    expires = now + (lifetime if lifetime is not None else LIFETIMES[purpose])
    payload = {
        "w": workspace.id,
        "c": customer_id,
        "p": purpose,
        "e": int(expires.timestamp()),
        "d": dict(data or {}),
    }
    signed = _serializer(workspace.signing_secret).dumps(payload)
    return f"{workspace.id}.{signed}"


def verify(session: Session, token: str, purpose: Purpose, now: datetime, *, allow_expired: bool = False) -> Link:
    """Check a token and load what it names. Raises a `LinkError` subclass.

    The order matters: the signature first (a forged token learns nothing, not even whether it
    has expired), then the purpose, then the expiry, then whether the customer still exists.
    `allow_expired` returns an authentic but expired link (marked `expired`), for the page that
    offers to send a fresh one.
    """
    workspace_id, sep, signed = token.partition(".")
    if not sep or len(token) > _MAX_TOKEN or not _WORKSPACE_ID.match(workspace_id):
        raise LinkInvalid("the link is malformed")
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise LinkInvalid("the link is not signed by a known workspace")
    try:
        payload = _serializer(workspace.signing_secret).loads(signed)
    except (BadData, ValueError, TypeError) as exc:
        raise LinkInvalid("the link's signature does not match") from exc
    if not isinstance(payload, dict) or payload.get("w") != workspace.id:
        raise LinkInvalid("the link's contents do not match its workspace")
    customer_id, found_purpose, expires, data = (payload.get(k) for k in ("c", "p", "e", "d"))
    if not isinstance(customer_id, str) or not isinstance(expires, int) or not isinstance(data, dict):
        raise LinkInvalid("the link's contents are incomplete")
    if found_purpose != purpose:
        raise LinkWrongPurpose(f"the link is for {found_purpose!r}, not {purpose!r}")
    expires_at = datetime.fromtimestamp(expires, UTC)
    expired = now >= expires_at
    if expired and not allow_expired:
        raise LinkExpired(f"the link expired at {expires_at:%Y-%m-%d %H:%M} UTC")
    try:
        customer, ids = profile_ids(session, workspace.id, customer_id)
    except NotFound:
        raise LinkCustomerGone("the customer of this link no longer exists") from None
    return Link(workspace, customer, ids, purpose, data, expires_at, expired)


def link_url(purpose: Purpose, token: str, base_url: str | None = None) -> str:
    """The absolute URL of a token's page (`Settings.public_url` when no base is given)."""
    if base_url is None:
        from shopkeeper.config import get_settings

        base_url = get_settings().public_url
    return f"{base_url.rstrip('/')}{PATHS[purpose]}/{quote(token, safe='')}"


def preferences_url(
    workspace: Workspace,
    customer_id: str,
    now: datetime,
    *,
    base_url: str | None = None,
    lifetime: timedelta | None = None,
) -> str:
    """The preference-centre link every marketing message carries."""
    return link_url("preferences", make_token(workspace, customer_id, "preferences", now, lifetime=lifetime), base_url)


def unsubscribe_url(
    workspace: Workspace,
    customer_id: str,
    channel: str,
    topic: str | None,
    now: datetime,
    *,
    base_url: str | None = None,
    lifetime: timedelta | None = None,
) -> str:
    """A link that opts out of `topic` on `channel` (the whole channel when `topic` is None or "*")."""
    data = {"ch": channel, "t": topic or ALL_TOPICS}
    token = make_token(workspace, customer_id, "unsubscribe", now, data=data, lifetime=lifetime)
    return link_url("unsubscribe", token, base_url)


def confirm_url(
    workspace: Workspace,
    customer_id: str,
    channel: str,
    topic: str,
    now: datetime,
    *,
    base_url: str | None = None,
    lifetime: timedelta | None = None,
) -> str:
    """A double opt-in confirmation link for one topic on one channel."""
    token = make_token(workspace, customer_id, "confirm", now, data={"ch": channel, "t": topic}, lifetime=lifetime)
    return link_url("confirm", token, base_url)


def unsubscribe_headers(
    workspace: Workspace,
    customer_id: str,
    now: datetime,
    *,
    topic: str | None = None,
    channel: str = "email",
    base_url: str | None = None,
    mailto: str | None = None,
    lifetime: timedelta | None = None,
) -> dict[str, str]:
    """`List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 2369, RFC 8058) for one email.

    RFC 8058 one-click needs an https URL: mailbox providers ignore a plain http one, so
    production must set `public_url` to the https address. `mailto` (an address that handles
    unsubscribe mail) is added as a second, older-client choice when given.
    """
    url = unsubscribe_url(workspace, customer_id, channel, topic, now, base_url=base_url, lifetime=lifetime)
    targets = [f"<{url}>"]
    if mailto:
        subject = quote(f"unsubscribe {url.rsplit('/', 1)[-1]}", safe="")
        targets.append(f"<mailto:{mailto}?subject={subject}>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
