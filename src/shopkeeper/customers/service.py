"""The customer domain's operations: the 360° view, events, trait edits, unmerge."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from shopkeeper import jsonutil
from shopkeeper.customers.models import Customer, Identity, IdentityConflict, Merge
from shopkeeper.customers.normalize import is_identity_kind, normalise_identity
from shopkeeper.customers.profile import valid_timezone
from shopkeeper.customers.resolution import apply_trait_patch
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Conflict, Invalid
from shopkeeper.events.models import Event
from shopkeeper.ids import new_id

MAX_TRAITS_BYTES = 32 * 1024
# Traits that are also identifiers: editing them re-links the identity.
IDENTITY_TRAITS = {"email": "email", "phone": "phone"}


def canonical(session: Session, workspace_id: str, customer_id: str) -> Customer:
    """The live profile for an id, following merges (a merged-away id still finds its person)."""
    customer = get_scoped(session, Customer, workspace_id, customer_id, "customer")
    for _ in range(32):
        if customer.merged_into is None:
            return customer
        customer = get_scoped(session, Customer, workspace_id, customer.merged_into, "customer")
    raise Conflict(f"customer {customer_id} has a merge cycle")  # pragma: no cover - guarded by merge


def profile_ids(session: Session, workspace_id: str, customer_id: str) -> tuple[Customer, list[str]]:
    """The live profile for an id and every id its data may be stored under (its own first,
    then the profiles merged into it)."""
    customer = canonical(session, workspace_id, customer_id)
    return customer, [customer.id, *merged_ids(session, workspace_id, customer.id)]


def merged_ids(session: Session, workspace_id: str, customer_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Customer.id).where(Customer.workspace_id == workspace_id, Customer.merged_into == customer_id)
        )
    )


def identities_of(session: Session, workspace_id: str, customer_ids: Sequence[str]) -> dict[str, list[Identity]]:
    found: dict[str, list[Identity]] = defaultdict(list)
    if customer_ids:
        rows = session.scalars(
            scoped(Identity, workspace_id)
            .where(Identity.customer_id.in_(customer_ids))
            .order_by(Identity.created_at, Identity.id)
        )
        for identity in rows:
            found[identity.customer_id].append(identity)
    return found


def identity_owner(session: Session, workspace_id: str, kind: str, value: str) -> str | None:
    return session.scalar(
        select(Identity.customer_id).where(
            Identity.workspace_id == workspace_id, Identity.kind == kind, Identity.value == value
        )
    )


def _link(
    session: Session, workspace_id: str, customer_id: str, kind: str, value: str, actor: str, now: datetime
) -> Identity:
    identity = Identity(
        id=new_id("idn"),
        workspace_id=workspace_id,
        kind=kind,
        value=value,
        customer_id=customer_id,
        source="api",
        source_ref=actor,
        created_at=now,
    )
    session.add(identity)
    return identity


def event_stats(session: Session, workspace_id: str, ids: Sequence[str]) -> dict[str, Any]:
    count, first, last = session.execute(
        select(func.count(), func.min(Event.timestamp), func.max(Event.timestamp)).where(
            Event.workspace_id == workspace_id, Event.customer_id.in_(ids)
        )
    ).one()
    # func.min/max lose the column type on SQLite; give the zone back the same way the column does.
    return {"events": count, "first_seen": _as_utc(first), "last_seen": _as_utc(last)}


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    when: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def merges_of(session: Session, workspace_id: str, customer_id: str) -> list[Merge]:
    return list(
        session.scalars(
            scoped(Merge, workspace_id)
            .where(or_(Merge.target_customer_id == customer_id, Merge.source_customer_id == customer_id))
            .order_by(Merge.created_at.desc(), Merge.id.desc())
        )
    )


def conflicts_of(session: Session, workspace_id: str, customer_id: str) -> list[IdentityConflict]:
    return list(
        session.scalars(
            scoped(IdentityConflict, workspace_id)
            .where(or_(IdentityConflict.customer_id == customer_id, IdentityConflict.other_customer_id == customer_id))
            .order_by(IdentityConflict.created_at.desc())
            .limit(100)
        )
    )


def list_events(
    session: Session,
    workspace_id: str,
    customer_ids: Sequence[str],
    *,
    type_: str | None,
    name: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Event]:
    query = select(Event).where(Event.workspace_id == workspace_id, Event.customer_id.in_(customer_ids))
    if type_:
        query = query.where(Event.type == type_)
    if name:
        query = query.where(Event.name == name)
    if before is not None:
        at, id_ = before
        query = query.where(or_(Event.timestamp < at, and_(Event.timestamp == at, Event.id < id_)))
    return list(session.scalars(query.order_by(Event.timestamp.desc(), Event.id.desc()).limit(limit)))


def update_profile(
    session: Session,
    workspace_id: str,
    customer: Customer,
    *,
    traits: dict[str, Any] | None,
    timezone: str | None,
    locale: str | None,
    actor: str,
    now: datetime,
    default_region: str | None,
) -> dict[str, Any]:
    """Patch traits (null removes one) and profile fields; identifier traits re-link identities.

    Everything is checked before anything is written, so a bad request changes nothing.
    """
    changes: dict[str, Any] = {}
    new_identities: list[tuple[str, str]] = []
    if traits is not None:
        for key in traits:
            if not key or len(key) > 200:
                raise Invalid("traits: trait names must be 1 to 200 characters", field="traits")
        merged = apply_trait_patch(customer.traits, traits)
        if len(jsonutil.dumps(merged)) > MAX_TRAITS_BYTES:
            raise Invalid("traits: a profile's traits must stay under 32 KB", field="traits")
        for trait, kind in IDENTITY_TRAITS.items():
            raw = traits.get(trait)
            if raw is None:
                continue
            value = normalise_identity(kind, raw, default_region)
            if value is None:
                raise Invalid(f"traits.{trait}: {raw!r} is not a valid {kind}", field=f"traits.{trait}")
            owner = identity_owner(session, workspace_id, kind, value)
            if owner is not None and owner != customer.id:
                raise Conflict(f"traits.{trait}: {value} belongs to customer {owner}", field=f"traits.{trait}")
            if owner is None:
                new_identities.append((kind, value))
        changes["traits"] = traits
        customer.traits = merged
    if timezone is not None:
        if valid_timezone(timezone) is None:
            raise Invalid(f"timezone: {timezone!r} is not an IANA time zone", field="timezone")
        changes["timezone"] = timezone
        customer.timezone = timezone
    if locale is not None:
        if not 1 < len(locale) <= 35:
            raise Invalid("locale: must be a language tag such as en-GB", field="locale")
        changes["locale"] = locale
        customer.locale = locale
    for kind, value in new_identities:
        _link(session, workspace_id, customer.id, kind, value, actor, now)
    customer.updated_at = now
    session.flush()
    return changes


def add_identity(
    session: Session,
    workspace_id: str,
    customer: Customer,
    kind: str,
    raw: str,
    *,
    actor: str,
    now: datetime,
    default_region: str | None,
) -> Identity:
    if not is_identity_kind(kind):
        raise Invalid(f"kind: {kind!r} is not an identity kind", field="kind")
    value = normalise_identity(kind, raw, default_region)
    if value is None:
        raise Invalid(f"value: {raw!r} is not a valid {kind}", field="value")
    owner = identity_owner(session, workspace_id, kind, value)
    if owner is not None:
        raise Conflict(f"{kind} {value} belongs to customer {owner} already", field="value")
    if kind == "user_id":
        held = session.scalar(
            select(Identity.value).where(
                Identity.workspace_id == workspace_id, Identity.customer_id == customer.id, Identity.kind == "user_id"
            )
        )
        if held is not None:
            raise Conflict(f"customer {customer.id} has user id {held} already", field="value")
    identity = _link(session, workspace_id, customer.id, kind, value, actor, now)
    session.flush()
    return identity
