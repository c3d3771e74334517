"""The durable write path: validated events → identity resolution → rows, in one transaction.

`store` is called by the group-commit writer (many HTTP requests per transaction), by the demo
generator and by imports. It never commits; whoever owns the transaction acknowledges only after
the commit, so an acknowledged event is a durable event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent.from_traits import (
    TraitsOfEvent,
    apply_subscription_traits,
    carries_subscriptions,
    profile_traits,
)
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.normalize import normalise_email, normalise_phone
from shopkeeper.customers.profile import locale_from, timezone_from
from shopkeeper.customers.resolution import IdentKey, ResolutionUnit
from shopkeeper.db.bulk import insert_rows
from shopkeeper.events.models import Event
from shopkeeper.events.schemas import InboundEvent
from shopkeeper.ids import new_id

_DEDUPE_CHUNK = 500


@dataclass(slots=True)
class IngestBatch:
    """Events of one workspace from one request (or one slice of an import)."""

    workspace_id: str
    events: list[InboundEvent]


@dataclass(slots=True)
class StoreStats:
    stored: int = 0
    duplicates: int = 0
    customers_created: int = 0
    merges: int = 0
    per_batch: list[int] = field(default_factory=list)


def _traits_of(event: InboundEvent) -> dict[str, Any] | None:
    if event.type == "identify":
        return event.traits
    ctx_traits = event.context.get("traits") if event.context else None
    return ctx_traits if isinstance(ctx_traits, dict) else None


def identifiers_of(event: InboundEvent, default_region: str | None) -> list[IdentKey]:
    """Every identifier the event carries, normalised (invalid emails/phones are left out)."""
    keys: list[IdentKey] = []
    if event.user_id:
        keys.append(("user_id", event.user_id))
    if event.anonymous_id:
        keys.append(("anonymous_id", event.anonymous_id))
    traits = _traits_of(event)
    if traits:
        email = traits.get("email")
        if isinstance(email, str) and (norm := normalise_email(email)):
            keys.append(("email", norm))
        phone = traits.get("phone")
        if isinstance(phone, str | int) and (e164 := normalise_phone(str(phone), default_region)):
            keys.append(("phone", e164))
    if event.context:
        device = event.context.get("device")
        if isinstance(device, dict):
            token = device.get("token")
            if isinstance(token, str) and token.strip() and len(token) <= 512:
                keys.append(("device_token", token.strip()))
    return keys


def _drop_duplicates(session: Session, workspace_id: str, events: list[InboundEvent]) -> list[InboundEvent]:
    """Events whose messageId was seen before (in this batch or stored) are acknowledged, not stored."""
    unique: dict[str, InboundEvent] = {}
    for event in events:
        if event.message_id is None:
            event.message_id = new_id("msg")
        unique.setdefault(event.message_id, event)
    ids = list(unique)
    for start in range(0, len(ids), _DEDUPE_CHUNK):
        chunk = ids[start : start + _DEDUPE_CHUNK]
        for (seen,) in session.execute(
            select(Event.message_id).where(Event.workspace_id == workspace_id, Event.message_id.in_(chunk))
        ):
            unique.pop(seen, None)
    return list(unique.values())


def _row(workspace_id: str, customer_id: str, event: InboundEvent) -> dict[str, Any]:
    return {
        "id": new_id("evt"),
        "workspace_id": workspace_id,
        "customer_id": customer_id,
        "message_id": event.message_id,
        "type": event.type,
        "name": event.name,
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "group_id": event.group_id,
        "previous_id": event.previous_id,
        "timestamp": event.timestamp,
        "original_timestamp": event.original_timestamp,
        "sent_at": event.sent_at,
        "received_at": event.received_at,
        "properties": event.properties,
        "traits": event.traits,
        "context": event.context,
    }


def store(session: Session, batches: Sequence[IngestBatch], cache: IdentityCache, now: datetime) -> StoreStats:
    """Resolve and write every event of `batches` inside the caller's transaction."""
    stats = StoreStats()
    workspace_ids = sorted({b.workspace_id for b in batches})
    settings: dict[str, dict[str, Any]] = {}
    for ws_id, epoch, ws_settings in session.execute(
        select(Workspace.id, Workspace.identity_epoch, Workspace.settings).where(Workspace.id.in_(workspace_ids))
    ):
        cache.observe_epoch(ws_id, epoch)
        settings[ws_id] = ws_settings or {}

    by_workspace: dict[str, list[InboundEvent]] = {}
    for batch in batches:
        by_workspace.setdefault(batch.workspace_id, []).extend(batch.events)
        stats.per_batch.append(len(batch.events))

    table: Any = Event.__table__
    pending: list[dict[str, Any]] = []
    # Profiles merged away while their events were still pending: merged → survivor.
    redirect: dict[str, str] = {}

    def survivor(customer_id: str) -> str:
        while customer_id in redirect:
            customer_id = redirect[customer_id]
        return customer_id

    def flush_events() -> None:
        if redirect:
            for row in pending:
                row["customer_id"] = survivor(row["customer_id"])
            redirect.clear()
        insert_rows(session, table, pending, ("workspace_id", "message_id"))
        pending.clear()

    for workspace_id, events in by_workspace.items():
        if workspace_id not in settings:
            continue  # the workspace was deleted while the events waited
        fresh = _drop_duplicates(session, workspace_id, events)
        stats.duplicates += len(events) - len(fresh)
        region = settings[workspace_id].get("default_phone_region")
        unit = ResolutionUnit(session, workspace_id, cache, now, on_merge=redirect.__setitem__)
        keyed = [(event, identifiers_of(event, region)) for event in fresh]
        prefetch: list[IdentKey] = [k for _, keys in keyed for k in keys]
        prefetch += [(kind, e.previous_id) for e, _ in keyed if e.previous_id for kind in ("user_id", "anonymous_id")]
        unit.lock(prefetch)
        if session.get_bind().dialect.name == "postgresql":
            # Read the epoch again now that the identifier locks are held: an erasure or unmerge
            # that committed while we waited for them must empty the cache before it is used.
            # (SQLite needs no second look: BEGIN IMMEDIATE kept every other writer out.)
            epoch = session.scalar(select(Workspace.identity_epoch).where(Workspace.id == workspace_id))
            cache.observe_epoch(workspace_id, int(epoch or 0))
        unit.prefetch(prefetch)
        unit.preload_meta((keys, event.user_id) for event, keys in keyed)
        consent_asks: list[TraitsOfEvent] = []

        for event, keys in keyed:
            if event.previous_id:
                # alias: previousId names an earlier user id or anonymous id of the same person.
                prev_kind = "user_id" if unit.knows(("user_id", event.previous_id)) else "anonymous_id"
                keys = [*keys, (prev_kind, event.previous_id)]
            traits = event.traits if event.type == "identify" else None
            customer_id = unit.resolve(
                keys,
                event.user_id,
                f"event:{event.message_id}",
                timezone=timezone_from(traits, event.context),
                locale=locale_from(traits, event.context),
                seen_at=event.timestamp,
            )
            if event.type == "identify":
                if event.traits:
                    if carries_subscriptions(event.traits):
                        consent_asks.append((customer_id, event.traits, event.context))
                        unit.patch_traits(customer_id, profile_traits(event.traits))
                    else:
                        unit.patch_traits(customer_id, event.traits)
                unit.patch_profile(customer_id, timezone=timezone_from(traits), locale=locale_from(traits))
            pending.append(_row(workspace_id, customer_id, event))
        unit.flush()
        if consent_asks:  # profiles are written now; ids merged away in this batch go to the survivor
            apply_subscription_traits(session, workspace_id, [(survivor(c), t, x) for c, t, x in consent_asks], now)
        flush_events()
        stats.stored += len(fresh)
        stats.customers_created += unit.customers_created
        stats.merges += unit.merges
    return stats
