"""A browser's push subscription, kept as an identity of kind `device_token` so that it belongs to
the customer like any other address: consent, suppression, the 360° view, export and erasure
(which deletes it, keys and all) work on it unchanged.

The identity's value is the endpoint URL with the subscription's keys in its fragment:

    https://push.example/send/abc123#p256dh=<base64url>&auth=<base64url>

A URL fragment is never sent in an HTTP request, so the value is still the address the message
is posted to; the keys travel with it wherever the address goes (the provider needs them to
encrypt) and nowhere else. A mobile device token (from `context.device.token`) has no such
fragment and is not a web push subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shopkeeper.channels.chat.visitors import Visitor, resolve
from shopkeeper.channels.push.vapid import unb64url
from shopkeeper.channels.webhook.guard import check_url
from shopkeeper.customers.merge import bump_identity_epoch
from shopkeeper.customers.models import Identity
from shopkeeper.customers.normalize import MAX_IDENTITY_LENGTH
from shopkeeper.errors import Invalid
from shopkeeper.ids import new_id

KIND = "device_token"


@dataclass(frozen=True, slots=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str

    @property
    def value(self) -> str:
        return f"{self.endpoint}#p256dh={self.p256dh}&auth={self.auth}"

    def info(self) -> dict[str, object]:
        """The shape pywebpush (and the browser's PushSubscription.toJSON()) uses."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def decode(value: str) -> Subscription | None:
    """The subscription an identity value holds, or None for any other device token."""
    endpoint, _, fragment = value.partition("#")
    if not fragment or not endpoint.startswith(("https://", "http://")):
        return None
    keys = parse_qs(fragment)
    p256dh, auth = keys.get("p256dh", [""])[0], keys.get("auth", [""])[0]
    if not p256dh or not auth:
        return None
    return Subscription(endpoint, p256dh, auth)


def _key(value: object, name: str, length: int) -> str:
    field = f"subscription.keys.{name}"
    if not isinstance(value, str) or not value or len(value) > 200:
        raise Invalid(f"{field}: required (base64url)", field=field)
    text = value.strip().rstrip("=")
    try:
        raw = unb64url(text.replace("+", "-").replace("/", "_"))
    except ValueError:
        raise Invalid(f"{field}: not base64url", field=field) from None
    if len(raw) != length or (name == "p256dh" and raw[0] != 4):
        raise Invalid(
            f"{field}: must be {length} bytes" + (" (an uncompressed P-256 point)" if name == "p256dh" else ""),
            field=field,
        )
    return text.replace("+", "-").replace("/", "_")


def check(raw: object, *, allow_private: bool) -> Subscription:
    """A PushSubscription as the browser serialises it (`subscription.toJSON()`), checked."""
    if not isinstance(raw, dict):
        raise Invalid("subscription: the PushSubscription's toJSON()", field="subscription")
    endpoint = raw.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise Invalid("subscription.endpoint: required", field="subscription.endpoint")
    try:
        endpoint = check_url(endpoint, allow_private=allow_private)
    except Invalid as exc:
        raise Invalid(exc.message.replace("url:", "subscription.endpoint:", 1), field="subscription.endpoint") from None
    parts = urlsplit(endpoint)
    if parts.scheme != "https" and not allow_private:
        raise Invalid("subscription.endpoint: push services are reached over https", field="subscription.endpoint")
    if parts.fragment or "#" in endpoint:
        raise Invalid("subscription.endpoint: a URL without a fragment", field="subscription.endpoint")
    keys = raw.get("keys")
    if not isinstance(keys, dict):
        raise Invalid("subscription.keys: required (p256dh and auth)", field="subscription.keys")
    subscription = Subscription(endpoint, _key(keys.get("p256dh"), "p256dh", 65), _key(keys.get("auth"), "auth", 16))
    if len(subscription.value) > MAX_IDENTITY_LENGTH:
        raise Invalid(
            f"subscription.endpoint: too long (the whole must fit {MAX_IDENTITY_LENGTH} characters)",
            field="subscription.endpoint",
        )
    return subscription


def of_endpoint(session: Session, workspace_id: str, endpoint: str) -> list[Identity]:
    """Every stored subscription of this endpoint (the same browser, whatever its keys)."""
    rows = session.scalars(
        select(Identity).where(
            Identity.workspace_id == workspace_id,
            Identity.kind == KIND,
            Identity.value.startswith(endpoint + "#", autoescape=True),
        )
    )
    return [row for row in rows if row.value.partition("#")[0] == endpoint]  # LIKE may ignore case


def register(session: Session, visitor: Visitor, subscription: Subscription, now: datetime) -> tuple[Identity, str]:
    """Link the subscription to the visitor's customer (made if new). A browser has one
    subscription per endpoint: an earlier one of the same endpoint, with other keys or another
    customer (someone else signed in on that browser), is replaced."""
    customer_id = resolve(session, visitor, now, create=True, trigger="push:subscribe")
    assert customer_id is not None
    replaced = False
    for old in of_endpoint(session, visitor.workspace_id, subscription.endpoint):
        if old.value == subscription.value and old.customer_id == customer_id:
            return old, customer_id
        session.delete(old)
        replaced = True
    if replaced:  # identities moved: caches of (kind, value) → customer must be dropped
        bump_identity_epoch(session, visitor.workspace_id)
    session.flush()
    identity = Identity(
        id=new_id("idn"),
        workspace_id=visitor.workspace_id,
        kind=KIND,
        value=subscription.value,
        customer_id=customer_id,
        source="api",
        source_ref="push:subscribe",
        created_at=now,
    )
    session.add(identity)
    session.flush()
    return identity, customer_id


def remove(session: Session, workspace_id: str, endpoint: str) -> int:
    """The browser unsubscribed: its subscription is deleted (knowing the endpoint, an
    unguessable capability URL, is the proof of being that browser)."""
    found = of_endpoint(session, workspace_id, endpoint)
    for row in found:
        session.delete(row)
    if found:
        bump_identity_epoch(session, workspace_id)
    return len(found)


def forget(session: Session, workspace_id: str, value: str) -> int:
    """The push service said the subscription is gone (404/410): delete it."""
    result = session.execute(
        delete(Identity).where(Identity.workspace_id == workspace_id, Identity.kind == KIND, Identity.value == value)
    )
    removed = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if removed:
        bump_identity_epoch(session, workspace_id)
    return removed
