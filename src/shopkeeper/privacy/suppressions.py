"""The suppression list as people manage it: look entries up, add them, lift them; every change audited.

Entries are matched by keyed hash (see consent.addresses), so a look-up by address also finds the
entries an erasure left without a readable address. `erased` entries are made only by erasure
and can never be lifted: that is the promise that an erased address is not contacted again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.auth.principal import Principal
from shopkeeper.auth.service import audit
from shopkeeper.consent.addresses import (
    ADDRESS_KINDS,
    SUPPRESSIBLE_CHANNELS,
    address_hash,
    hashing_secret,
    normalise_address,
)
from shopkeeper.consent.models import Suppression
from shopkeeper.consent.service import SUPPRESSION_REASONS, suppress, suppressions_for
from shopkeeper.consent.service import check_channel as consent_check_channel
from shopkeeper.customers.models import Identity
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Conflict, Invalid

# What a person may record; `erased` is reserved for erasure.
MANUAL_REASONS = ("hard_bounce", "complaint", "stop", "manual")
_ID_RE = re.compile(r"sup_[0-9a-f]{32}")


def check_channel(channel: str, field: str = "channel") -> str:
    if channel not in SUPPRESSIBLE_CHANNELS:
        raise Invalid(
            f"{field}: {channel!r} cannot be suppressed; one of {', '.join(SUPPRESSIBLE_CHANNELS)} "
            "(chat and webhook have no address: opt the customer out instead)",
            field=field,
        )
    return channel


def check_reason(reason: str) -> str:
    if reason == "erased":
        raise Invalid("reason: 'erased' is set only by erasing a customer", field="reason")
    if reason not in MANUAL_REASONS:
        raise Invalid(f"reason: {reason!r} is not one of {', '.join(MANUAL_REASONS)}", field="reason")
    return reason


def phone_region(session: Session, workspace_id: str) -> str | None:
    """National phone numbers are read in the workspace's default region, as ingestion does."""
    workspace = session.get(Workspace, workspace_id)
    region = (workspace.settings or {}).get("default_phone_region") if workspace else None
    return region if isinstance(region, str) else None


def normalised(session: Session, workspace_id: str, channel: str, raw: str) -> str:
    """The stored form of an address on a channel, or a 400 naming the address."""
    check_channel(channel)
    address = normalise_address(channel, raw, phone_region(session, workspace_id))
    if address is None:
        raise Invalid(f"address: {raw!r} is not a valid {channel} address", field="address")
    return address


def _digests(session: Session, workspace_id: str, raw: str, channel: str | None) -> list[str]:
    """The keyed hashes an address would have on `channel`, or on every channel it can be."""
    secret = hashing_secret(session, workspace_id)
    region = phone_region(session, workspace_id)
    digests = []
    for candidate in [channel] if channel else SUPPRESSIBLE_CHANNELS:
        address = normalise_address(candidate, raw, region)
        if address is not None:
            digests.append(address_hash(secret, candidate, address))
    if not digests:
        where = f"a {channel}" if channel else "an email, phone or device"
        raise Invalid(f"address: {raw!r} is not {where} address", field="address")
    return digests


def list_suppressions(
    session: Session,
    workspace_id: str,
    *,
    channel: str | None = None,
    reason: str | None = None,
    address: str | None = None,
    after_id: str | None = None,
    limit: int = 50,
) -> list[Suppression]:
    """Newest first (ids sort by creation), keyset-paged after `after_id`."""
    query = scoped(Suppression, workspace_id)
    if channel is not None:
        # Any channel may be listed: the consent domain can suppress a chat session too.
        query = query.where(Suppression.channel == consent_check_channel(channel))
    if reason is not None:
        if reason not in SUPPRESSION_REASONS:
            raise Invalid(f"reason: {reason!r} is not one of {', '.join(SUPPRESSION_REASONS)}", field="reason")
        query = query.where(Suppression.reason == reason)
    if address is not None:
        query = query.where(Suppression.address_hash.in_(_digests(session, workspace_id, address, channel)))
    if after_id is not None:
        if not _ID_RE.fullmatch(after_id):
            raise Invalid("cursor: not a cursor this API returned", field="cursor")
        query = query.where(Suppression.id < after_id)
    return list(session.scalars(query.order_by(Suppression.id.desc()).limit(limit)))


def find_suppression(session: Session, workspace_id: str, channel: str, raw: str) -> Suppression | None:
    found = suppressions_for(session, workspace_id, channel, [normalised(session, workspace_id, channel, raw)])
    return found[0] if found else None


def add_suppression(
    session: Session,
    principal: Principal,
    *,
    channel: str,
    address: str,
    reason: str,
    note: str | None,
    now: datetime,
) -> tuple[Suppression, bool]:
    """Suppress an address; returns the entry and whether it is new (an existing entry for the
    address is returned unchanged, so retrying is harmless)."""
    workspace_id = principal.workspace_id
    check_reason(reason)
    value = normalised(session, workspace_id, channel, address)
    note = (note or "").strip() or None
    existing = suppressions_for(session, workspace_id, channel, [value])
    if existing:
        return existing[0], False
    row = suppress(session, workspace_id, channel, value, reason, now, note=note)
    audit(
        session,
        principal,
        "suppression.add",
        subject_type="suppression",
        subject_id=row.id,
        details={"channel": channel, "address": value, "reason": reason, "note": note},
        now=now,
    )
    return row, True


def remove_suppression(session: Session, principal: Principal, suppression_id: str, now: datetime) -> Suppression:
    """Lift one entry (say, a bounce that was the provider's mistake). Erasure entries refuse (409)."""
    row = get_scoped(session, Suppression, principal.workspace_id, suppression_id, "suppression")
    if row.reason == "erased":
        raise Conflict(
            f"suppression {row.id} was made by erasing a customer: the address stays suppressed for good",
            field="suppression_id",
        )
    session.delete(row)
    session.flush()
    audit(
        session,
        principal,
        "suppression.remove",
        subject_type="suppression",
        subject_id=row.id,
        details={"channel": row.channel, "address": row.address, "reason": row.reason},
        now=now,
    )
    return row


def matching(session: Session, workspace_id: str, addresses: Sequence[tuple[str, str]]) -> list[Suppression]:
    """Entries for any of (channel, normalised address), by hash: what erasure and export look for."""
    found: dict[str, Suppression] = {}
    by_channel: dict[str, list[str]] = {}
    for channel, value in addresses:
        by_channel.setdefault(channel, []).append(value)
    for channel, values in by_channel.items():
        for row in suppressions_for(session, workspace_id, channel, values):
            found[row.id] = row
    return sorted(found.values(), key=lambda r: r.id)


def addresses_of_profiles(session: Session, workspace_id: str, customer_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(channel, address) for every channel that reaches one of these profiles' identities."""
    rows = session.execute(
        select(Identity.kind, Identity.value).where(
            Identity.workspace_id == workspace_id, Identity.customer_id.in_(customer_ids)
        )
    )
    return [(channel, value) for kind, value in rows for channel, kinds in ADDRESS_KINDS.items() if kind in kinds]
