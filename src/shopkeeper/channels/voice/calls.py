"""Call records in (SPEC §5, voice/call-centre): each call becomes an interaction on the voice
channel — on the customer's timeline with its direction, disposition, duration, agent, transcript
and notes — for the customer found by identity resolution on the identifiers given (a new
profile for a number never seen before).

Idempotent on the call system's `external_id`: a repeat of the same record returns the stored
call, the same id with different content is a Conflict. Concurrent repeats take turns on an
advisory lock (PostgreSQL) or the single writer (SQLite), so a call is never stored twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import User, Workspace
from shopkeeper.channels.voice.schemas import CallIn
from shopkeeper.channels.webhook.events import publish
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.normalize import normalise_email, normalise_identity, normalise_phone
from shopkeeper.customers.resolution import IdentKey, ResolutionUnit
from shopkeeper.customers.service import add_identity, canonical, identity_owner
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import Conflict, Invalid, NotFound
from shopkeeper.ids import new_id
from shopkeeper.messaging.models import Interaction

MAX_DATA_BYTES = 16 * 1024
FUTURE_SKEW = timedelta(minutes=5)  # a call system's clock a little ahead is fine, a day is a mistake
_WORDS = {
    "answered": "answered",
    "missed": "missed",
    "voicemail": "went to voicemail",
    "busy": "busy",
    "no_answer": "not answered",
    "failed": "failed",
    "canceled": "canceled",
    "rejected": "rejected",
}


@dataclass(frozen=True, slots=True)
class Checked:
    """A call record with its identifiers normalised and its agent found."""

    call: CallIn
    keys: list[IdentKey]  # (kind, value) for identity resolution: phone, email, user_id
    phone: str | None
    user_id: str | None
    agent: dict[str, str] | None
    fingerprint: str


@dataclass(frozen=True, slots=True)
class StoredCall:
    interaction: Interaction
    created: bool


def message_id(external_id: str) -> str:
    """The interaction's `message_id` (indexed per workspace): how a repeat is found."""
    return f"call:{external_id}"


def lock_key(external_id: str) -> IdentKey:
    return ("call", external_id)


def check(session: Session, workspace: Workspace, call: CallIn, now: datetime) -> Checked:
    """Everything that can be refused, refused before anything is written; errors name the field."""
    region = (workspace.settings or {}).get("default_phone_region")
    keys: list[IdentKey] = []
    phone = None
    if call.customer.phone:
        phone = normalise_phone(call.customer.phone, region)
        if phone is None:
            hint = "" if region else " (a national number needs the workspace's default_phone_region)"
            raise Invalid(
                f"customer.phone: {call.customer.phone!r} is not a valid phone number{hint}", field="customer.phone"
            )
        keys.append(("phone", phone))
    if call.customer.email:
        email = normalise_email(call.customer.email)
        if email is None:
            raise Invalid(f"customer.email: {call.customer.email!r} is not a valid address", field="customer.email")
        keys.append(("email", email))
    user_id = None
    if call.customer.user_id:
        user_id = normalise_identity("user_id", call.customer.user_id)
        if user_id is None:
            raise Invalid("customer.user_id: empty", field="customer.user_id")
        keys.append(("user_id", user_id))
    external_id = call.external_id.strip()
    if not external_id:
        raise Invalid("external_id: empty", field="external_id")
    if call.started_at > now + FUTURE_SKEW:
        raise Invalid(f"started_at: {call.started_at.isoformat()} is in the future", field="started_at")
    if call.recording_url is not None:
        parts = urlsplit(call.recording_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid("recording_url: an http(s) address", field="recording_url")
    try:
        size = len(orjson.dumps(call.data, default=str))
    except TypeError:  # an integer beyond 64 bits: no JSON column can keep it
        raise Invalid("data: a number too large to store (beyond 64 bits)", field="data") from None
    if size > MAX_DATA_BYTES:
        raise Invalid(f"data: over {MAX_DATA_BYTES // 1024} KB", field="data")
    agent: dict[str, str] | None = None
    if call.agent is not None:
        agent = {}
        if call.agent.user_id:
            user = session.scalar(scoped(User, workspace.id).where(User.id == call.agent.user_id))
            if user is None:
                raise Invalid(f"agent.user_id: no user {call.agent.user_id!r} in this workspace", field="agent.user_id")
            agent["user_id"] = user.id
            agent["name"] = (call.agent.name or "").strip() or user.name or user.email
        else:
            agent["name"] = (call.agent.name or "").strip()
    record = call.model_dump(mode="json")
    record["external_id"] = external_id
    fingerprint = hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Checked(call, keys, phone, user_id, agent, fingerprint)


def _customer(session: Session, workspace_id: str, checked: Checked, unit: ResolutionUnit, actor: str) -> str:
    given = checked.call.customer.customer_id
    if given is None:
        unit.prefetch(checked.keys)
        customer_id = unit.resolve(
            checked.keys, checked.user_id, f"call:{checked.call.external_id.strip()}", seen_at=checked.call.started_at
        )
        unit.flush()
        return customer_id
    try:
        customer = canonical(session, workspace_id, given)
    except NotFound:
        raise Invalid(f"customer.customer_id: no customer {given!r}", field="customer.customer_id") from None
    # Identifiers nobody holds yet join this profile; one held by someone else is left alone
    # (the call names the customer explicitly; merging is for identity resolution to decide).
    for kind, value in checked.keys:
        if identity_owner(session, workspace_id, kind, value) is None:
            try:
                with session.begin_nested():
                    add_identity(
                        session, workspace_id, customer, kind, value, actor=actor, now=unit.now, default_region=None
                    )
            except Conflict:
                continue  # e.g. a second user_id for a profile that has one
    return customer.id


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def summary(call: CallIn, agent: dict[str, str] | None) -> str:
    parts = [f"Call {_WORDS[call.disposition]}"]
    if call.duration_seconds > 0:
        parts.append(_duration(call.duration_seconds))
    if agent and agent.get("name"):
        parts.append(f"with {agent['name']}")
    return ", ".join(parts)


def record_call(
    session: Session,
    workspace: Workspace,
    checked: Checked,
    *,
    now: datetime,
    actor: str,
) -> StoredCall:
    """Store one checked call (the caller holds the locks: see `lock`)."""
    call = checked.call
    external_id = call.external_id.strip()
    existing = session.scalar(
        scoped(Interaction, workspace.id)
        .where(Interaction.message_id == message_id(external_id), Interaction.channel == "voice")
        .limit(1)
    )
    if existing is not None:
        if (existing.data or {}).get("fingerprint") != checked.fingerprint:
            raise Conflict(
                f"external_id: call {external_id!r} is stored already with other details", field="external_id"
            )
        return StoredCall(existing, False)
    # A unit per call: what it remembers must not outlive a call whose savepoint rolled back.
    unit = ResolutionUnit(session, workspace.id, IdentityCache(0), now)
    customer_id = _customer(session, workspace.id, checked, unit, actor)
    started = call.started_at.astimezone(UTC)
    data: dict[str, Any] = {
        "external_id": external_id,
        "disposition": call.disposition,
        "duration_seconds": call.duration_seconds,
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=call.duration_seconds)).isoformat(),
        "agent": checked.agent,
        "notes": call.notes,
        "has_transcript": bool(call.transcript),
        "recording_url": call.recording_url.strip() if call.recording_url else None,
        "source": call.source,
        "customer": {k: v for k, v in call.customer.model_dump().items() if v is not None},
        "extra": call.data,
        "fingerprint": checked.fingerprint,
    }
    interaction = Interaction(
        id=new_id("int"),
        workspace_id=workspace.id,
        customer_id=customer_id,
        channel="voice",
        direction=call.direction,
        status=call.disposition,
        provider=call.source or "api",
        provider_message_id=external_id,
        address=checked.phone,
        message_id=message_id(external_id),
        subject=summary(call, checked.agent),
        text=call.transcript or call.notes,
        html=None,
        data=data,
        cost=None,
        created_at=started,
    )
    session.add(interaction)
    session.flush()
    publish(
        session,
        workspace.id,
        "call.recorded",
        {
            "interaction_id": interaction.id,
            "customer_id": customer_id,
            "external_id": external_id,
            "direction": call.direction,
            "disposition": call.disposition,
            "started_at": started.isoformat(),
            "duration_seconds": call.duration_seconds,
            "agent": checked.agent,
            "source": call.source,
            "recording_url": data["recording_url"],
        },
        customer_id=customer_id,
        now=now,
    )
    return StoredCall(interaction, True)


def lock(session: Session, workspace_id: str, checked: list[Checked], now: datetime) -> None:
    """One lock round for every call about to be stored (external ids and identifiers), taken
    in one global order so concurrent batches cannot deadlock (PostgreSQL; SQLite's writer
    transaction excludes every other writer already)."""
    keys: list[IdentKey] = []
    for item in checked:
        keys.append(lock_key(item.call.external_id.strip()))
        keys.extend(item.keys)
    ResolutionUnit(session, workspace_id, IdentityCache(0), now).lock(keys)


def workspace_of(session: Session, workspace_id: str) -> Workspace:
    workspace = session.scalar(select(Workspace).where(Workspace.id == workspace_id))
    if workspace is None:
        raise NotFound("workspace not found", field="workspace")
    return workspace
