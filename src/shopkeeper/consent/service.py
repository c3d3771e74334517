"""Topics, subscription statuses and the consent log, preferences and suppressions.

Every change of status goes through `set_status`, which appends a ConsentEvent in the same
transaction: the current state (Subscription) and its proof (ConsentEvent) never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shopkeeper.consent.addresses import CHANNELS_OF_KIND, address_hash, hashing_secret, normalise_address
from shopkeeper.consent.models import (
    ALL_TOPICS,
    CHANNELS,
    LAWFUL_BASES,
    SOURCES,
    STATUSES,
    ConsentEvent,
    ContactPreference,
    Subscription,
    Suppression,
    Topic,
)
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import Conflict, Invalid, NotFound
from shopkeeper.ids import new_id

_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
SUPPRESSION_REASONS = ("hard_bounce", "complaint", "stop", "erased", "manual")
FREQUENCIES = ("any", "daily", "weekly", "monthly")


def check_channel(channel: str, field: str = "channel") -> str:
    if channel not in CHANNELS:
        raise Invalid(f"{field}: {channel!r} is not a channel; one of {', '.join(CHANNELS)}", field=field)
    return channel


# -- topics -----------------------------------------------------------------------------------
def create_topic(
    session: Session,
    workspace_id: str,
    *,
    key: str,
    name: str,
    purpose: str,
    lawful_basis: str,
    channels: Sequence[str],
    description: str = "",
    double_opt_in: bool = False,
    now: datetime,
) -> Topic:
    if not _KEY_RE.match(key):
        raise Invalid("key: lower-case letters, digits, '_', '-' or '.', up to 80", field="key")
    if lawful_basis not in LAWFUL_BASES:
        raise Invalid(f"lawful_basis: one of {', '.join(LAWFUL_BASES)}", field="lawful_basis")
    if not channels:
        raise Invalid("channels: name at least one channel", field="channels")
    for channel in channels:
        check_channel(channel, "channels")
    if not purpose.strip():
        raise Invalid("purpose: say what the messages of this topic are for", field="purpose")
    if session.scalar(scoped(Topic, workspace_id).where(Topic.key == key)) is not None:
        raise Conflict(f"a topic with key {key!r} exists already", field="key")
    topic = Topic(
        id=new_id("top"),
        workspace_id=workspace_id,
        key=key,
        name=name.strip() or key,
        description=description,
        purpose=purpose.strip(),
        lawful_basis=lawful_basis,
        channels=sorted(set(channels)),
        double_opt_in=double_opt_in,
        created_at=now,
    )
    session.add(topic)
    session.flush()
    return topic


def topic_by_key(session: Session, workspace_id: str, key: str, *, field: str = "topic") -> Topic:
    topic = session.scalar(scoped(Topic, workspace_id).where(Topic.key == key))
    if topic is None:
        raise NotFound(f"{field}: no topic {key!r} in this workspace", field=field)
    return topic


def topics(session: Session, workspace_id: str, *, include_archived: bool = False) -> list[Topic]:
    query = scoped(Topic, workspace_id).order_by(Topic.key)
    if not include_archived:
        query = query.where(Topic.archived_at.is_(None))
    return list(session.scalars(query))


# -- statuses ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Proof:
    """Where a change came from: kept with the consent event."""

    source: str
    wording: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    actor: str | None = None


def _subscription(
    session: Session, workspace_id: str, customer_id: str, channel: str, topic: str
) -> Subscription | None:
    return session.scalar(
        scoped(Subscription, workspace_id).where(
            Subscription.customer_id == customer_id, Subscription.channel == channel, Subscription.topic == topic
        )
    )


def set_status(
    session: Session,
    workspace_id: str,
    customer_id: str,
    channel: str,
    topic_key: str,
    status: str,
    proof: Proof,
    now: datetime,
) -> ConsentEvent | None:
    """Change one status and log it. Returns None when it already was that status (no change,
    nothing to prove)."""
    check_channel(channel)
    if status not in STATUSES:
        raise Invalid(f"status: one of {', '.join(STATUSES)}", field="status")
    if proof.source not in SOURCES:
        raise Invalid(f"source: one of {', '.join(SOURCES)}", field="source")
    lawful_basis = purpose = None
    if topic_key != ALL_TOPICS:
        topic = topic_by_key(session, workspace_id, topic_key)
        if channel not in topic.channels:
            raise Invalid(f"topic {topic_key!r} is not sent on {channel}", field="channel")
        lawful_basis, purpose = topic.lawful_basis, topic.purpose
    elif status in ("opted_in", "pending"):
        raise Invalid("a channel-wide status can only be opted_out or unknown; opt in to a topic", field="status")
    current = _subscription(session, workspace_id, customer_id, channel, topic_key)
    previous = current.status if current else "unknown"
    if previous == status:
        return None
    event = ConsentEvent(
        id=new_id("cev"),
        workspace_id=workspace_id,
        customer_id=customer_id,
        channel=channel,
        topic=topic_key,
        status=status,
        previous_status=previous,
        source=proof.source,
        lawful_basis=lawful_basis,
        purpose=purpose,
        wording=proof.wording,
        ip=proof.ip,
        user_agent=(proof.user_agent or None) and proof.user_agent[:500],
        actor=proof.actor,
        created_at=now,
    )
    session.add(event)
    if current is None:
        session.add(
            Subscription(
                id=new_id("sub"),
                workspace_id=workspace_id,
                customer_id=customer_id,
                channel=channel,
                topic=topic_key,
                status=status,
                source=proof.source,
                consent_event_id=event.id,
                updated_at=now,
            )
        )
    else:
        current.status, current.source, current.consent_event_id, current.updated_at = (
            status,
            proof.source,
            event.id,
            now,
        )
    session.flush()
    return event


@dataclass(frozen=True, slots=True)
class Standing:
    """A customer's effective status for one channel and topic, and the record behind it."""

    status: str
    channel_wide: str
    subscription: Subscription | None
    channel_subscription: Subscription | None


def standing(
    session: Session, workspace_id: str, customer_ids: Sequence[str], channel: str, topic_key: str | None
) -> Standing:
    """The topic status and the channel-wide status over a profile and the profiles merged into it.

    The most recent change wins (an opt-in given on the surviving profile after a merge counts);
    at the same instant an opt-out wins, so a merge alone can never turn an opt-out into consent.
    """
    rows = list(
        session.scalars(
            scoped(Subscription, workspace_id).where(
                Subscription.customer_id.in_(customer_ids),
                Subscription.channel == channel,
                Subscription.topic.in_([ALL_TOPICS, topic_key or ALL_TOPICS]),
            )
        )
    )

    def pick(topic: str) -> Subscription | None:
        candidates = [r for r in rows if r.topic == topic]
        if not candidates:
            return None
        return max(candidates, key=lambda r: (r.updated_at, r.status == "opted_out"))

    channel_row = pick(ALL_TOPICS)
    topic_row = pick(topic_key) if topic_key and topic_key != ALL_TOPICS else None
    return Standing(
        status=topic_row.status if topic_row else "unknown",
        channel_wide=channel_row.status if channel_row else "unknown",
        subscription=topic_row,
        channel_subscription=channel_row,
    )


def subscriptions_of(session: Session, workspace_id: str, customer_ids: Sequence[str]) -> list[Subscription]:
    return list(
        session.scalars(
            scoped(Subscription, workspace_id)
            .where(Subscription.customer_id.in_(customer_ids))
            .order_by(Subscription.channel, Subscription.topic)
        )
    )


def consent_events_of(
    session: Session, workspace_id: str, customer_ids: Sequence[str], limit: int = 200
) -> list[ConsentEvent]:
    return list(
        session.scalars(
            scoped(ConsentEvent, workspace_id)
            .where(ConsentEvent.customer_id.in_(customer_ids))
            .order_by(ConsentEvent.created_at.desc(), ConsentEvent.id.desc())
            .limit(limit)
        )
    )


# -- preferences ------------------------------------------------------------------------------
def preference_of(session: Session, workspace_id: str, customer_id: str) -> ContactPreference | None:
    return session.scalar(scoped(ContactPreference, workspace_id).where(ContactPreference.customer_id == customer_id))


def set_preference(
    session: Session,
    workspace_id: str,
    customer_id: str,
    *,
    preferred_channel: str | None,
    frequency: str,
    quiet_start: str | None,
    quiet_end: str | None,
    now: datetime,
) -> ContactPreference:
    from shopkeeper.consent.quiet_hours import parse_clock

    if preferred_channel is not None:
        check_channel(preferred_channel, "preferred_channel")
    if frequency not in FREQUENCIES:
        raise Invalid(f"frequency: one of {', '.join(FREQUENCIES)}", field="frequency")
    if (quiet_start is None) != (quiet_end is None):
        raise Invalid(
            "quiet_start and quiet_end go together", field="quiet_start" if quiet_start is None else "quiet_end"
        )
    if quiet_start is not None and quiet_end is not None:
        quiet_start = parse_clock(quiet_start, "quiet_start").strftime("%H:%M")
        quiet_end = parse_clock(quiet_end, "quiet_end").strftime("%H:%M")
    preference = preference_of(session, workspace_id, customer_id)
    if preference is None:
        preference = ContactPreference(id=new_id("pref"), workspace_id=workspace_id, customer_id=customer_id)
        session.add(preference)
    preference.preferred_channel = preferred_channel
    preference.frequency = frequency
    preference.quiet_start, preference.quiet_end = quiet_start, quiet_end
    preference.updated_at = now
    session.flush()
    return preference


# -- suppressions -----------------------------------------------------------------------------
def suppress(
    session: Session,
    workspace_id: str,
    channel: str,
    raw_address: str,
    reason: str,
    now: datetime,
    *,
    note: str | None = None,
    keep_address: bool = True,
    default_region: str | None = None,
) -> Suppression:
    """Suppress an address on a channel (idempotent: an existing entry is returned)."""
    check_channel(channel)
    if reason not in SUPPRESSION_REASONS:
        raise Invalid(f"reason: one of {', '.join(SUPPRESSION_REASONS)}", field="reason")
    address = normalise_address(channel, raw_address, default_region)
    if address is None:
        raise Invalid(f"address: {raw_address!r} is not a {channel} address", field="address")
    digest = address_hash(hashing_secret(session, workspace_id), channel, address)
    existing = session.scalar(
        scoped(Suppression, workspace_id).where(Suppression.channel == channel, Suppression.address_hash == digest)
    )
    if existing is not None:
        if reason == "erased" and existing.reason != "erased":
            # Erasure outranks every other reason: the entry may never be lifted again.
            existing.reason, existing.note = "erased", None
        if not keep_address:
            existing.address = None
        return existing
    row = Suppression(
        id=new_id("sup"),
        workspace_id=workspace_id,
        channel=channel,
        address_hash=digest,
        address=address if keep_address else None,
        reason=reason,
        note=note,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def suppress_everywhere(
    session: Session, workspace_id: str, kind: str, address: str, reason: str, now: datetime, *, keep_address: bool
) -> list[Suppression]:
    """Suppress an already normalised address of an identity kind on every channel it reaches."""
    return [
        suppress(session, workspace_id, channel, address, reason, now, keep_address=keep_address)
        for channel in CHANNELS_OF_KIND.get(kind, ())
    ]


def lift_suppression(
    session: Session,
    workspace_id: str,
    channel: str,
    raw_address: str,
    *,
    reasons: Sequence[str] | None = None,
    default_region: str | None = None,
) -> int:
    """Remove an address's suppression (e.g. START after STOP). Erasure suppressions never lift."""
    address = normalise_address(channel, raw_address, default_region)
    if address is None:
        raise Invalid(f"address: {raw_address!r} is not a {channel} address", field="address")
    digest = address_hash(hashing_secret(session, workspace_id), channel, address)
    allowed = [r for r in (reasons or SUPPRESSION_REASONS) if r != "erased"]
    result = session.execute(
        delete(Suppression).where(
            Suppression.workspace_id == workspace_id,
            Suppression.channel == channel,
            Suppression.address_hash == digest,
            Suppression.reason.in_(allowed),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def suppressions_for(session: Session, workspace_id: str, channel: str, addresses: Sequence[str]) -> list[Suppression]:
    if not addresses:
        return []
    secret = hashing_secret(session, workspace_id)
    digests = [address_hash(secret, channel, a) for a in addresses]
    return list(
        session.scalars(
            select(Suppression).where(
                Suppression.workspace_id == workspace_id,
                Suppression.channel == channel,
                Suppression.address_hash.in_(digests),
            )
        )
    )
