"""Where a channel reaches a customer, and the keyed hash by which a suppressed address is known.

Suppressions match on an HMAC of the normalised address under the workspace's own secret, so an
erased customer's address can still be refused without being stored: the hash cannot be
reversed by hashing a list of known addresses without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.customers.models import Identity
from shopkeeper.customers.normalize import normalise_identity

# The identity kind that is a channel's address. Chat reaches whoever has an app or web session
# (a user or anonymous id); webhooks go to a system, not to an address of the customer.
ADDRESS_KINDS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "sms": ("phone",),
    "whatsapp": ("phone",),
    "voice": ("phone",),
    "push": ("device_token",),
    "chat": ("user_id", "anonymous_id"),
    "webhook": (),
    "messenger": ("messenger_psid",),
    "telegram": ("telegram_chat_id",),
}
# Channels that an address of each kind can be suppressed on (erasure suppresses them all).
CHANNELS_OF_KIND: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "phone": ("sms", "whatsapp", "voice"),
    "device_token": ("push",),
}
# The channels that reach an address and whose sends `can_contact` checks against the list.
# Chat reaches a session and webhooks a system: an opt-out is the way to silence those.
SUPPRESSIBLE_CHANNELS: tuple[str, ...] = tuple(c for channels in CHANNELS_OF_KIND.values() for c in channels)


def address_hash(secret: str, channel: str, address: str) -> str:
    return hmac.new(secret.encode(), f"{channel}\x1f{address}".encode(), hashlib.sha256).hexdigest()


def hashing_secret(session: Session, workspace_id: str) -> str:
    secret = session.scalar(select(Workspace.hashing_secret).where(Workspace.id == workspace_id))
    if secret is None:
        raise LookupError(f"workspace {workspace_id} not found")
    return secret


def normalise_address(channel: str, raw: str, default_region: str | None = None) -> str | None:
    kinds = ADDRESS_KINDS.get(channel, ())
    if not kinds:
        return None
    return normalise_identity(kinds[0], raw, default_region)


def addresses_of(session: Session, workspace_id: str, customer_ids: Sequence[str], channel: str) -> list[str]:
    """The customer's addresses on a channel (a customer may have several emails or phones)."""
    kinds = ADDRESS_KINDS.get(channel, ())
    if not kinds or not customer_ids:
        return []
    return list(
        session.scalars(
            select(Identity.value)
            .where(
                Identity.workspace_id == workspace_id,
                Identity.customer_id.in_(customer_ids),
                Identity.kind.in_(kinds),
            )
            .order_by(Identity.created_at)
        )
    )
