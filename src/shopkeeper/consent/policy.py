"""`can_contact`: the single decision every send asks for — allow, deny (with a reason), or delay.

The rules, in order; the first that refuses decides:

1. the customer exists (a merged-away id speaks for its survivor);
2. the channel reaches them (an email address for email, a phone for SMS, …);
3. none of their addresses on the channel is suppressed (bounce, complaint, STOP, erasure);
4. the channel is not opted out as a whole — this stops transactional messages too;
5. marketing only: no service hold is open (an unresolved complaint, a poor CSAT answer or
   review pauses marketing: consent.holds); the topic exists and is sent on this channel; its
   lawful basis is met (consent needs `opted_in`; contract and legitimate interest need no
   explicit opt-out);
6. frequency caps (marketing; the workspace's per channel and overall, per day and week, and the
   customer's own pace from the preference centre) — a full cap delays to when a slot frees;
7. quiet hours in the customer's time zone (marketing, and transactional only if configured) —
   delayed to the end of the window;
8. a delay past `expires_at` becomes a refusal.

`reserve_contact` makes the same decision and, if it allows, records the contact under a lock on
the customer, so that several workers sending to one person at once cannot exceed a cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent import holds
from shopkeeper.consent.addresses import (
    ADDRESS_KINDS,
    SUPPRESSIBLE_CHANNELS,
    address_hash,
    addresses_of,
    hashing_secret,
)
from shopkeeper.consent.models import ALL_TOPICS, CHANNELS, KINDS, Contact, Topic
from shopkeeper.consent.pressure import CHANNEL_WEIGHTS
from shopkeeper.consent.quiet_hours import QuietWindow, parse_clock
from shopkeeper.consent.service import check_channel, preference_of, standing, suppressions_for
from shopkeeper.customers.models import Customer
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import Invalid
from shopkeeper.ids import new_id

Outcome = Literal["allow", "deny", "delay"]
WINDOWS = {"day": timedelta(days=1), "week": timedelta(days=7)}
# The customer's chosen pace, as a cap on marketing messages over all channels.
FREQUENCY_CAPS = {
    "daily": ("day", 1, timedelta(days=1)),
    "weekly": ("week", 1, timedelta(days=7)),
    "monthly": ("month", 1, timedelta(days=30)),
}


class Cap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: int | None = Field(default=None, ge=0, le=1000)
    week: int | None = Field(default=None, ge=0, le=10000)


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = "21:00"
    end: str = "08:00"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        try:
            return parse_clock(value, "quiet_hours").strftime("%H:%M")
        except Invalid:
            raise ValueError(f"{value!r} is not a time of day such as 21:00") from None


class ContactPolicy(BaseModel):
    """A workspace's contact-pressure rules (`workspaces.settings["contact_policy"]`)."""

    model_config = ConfigDict(extra="forbid")

    # "all" caps every channel together; a channel name caps that channel.
    caps: dict[str, Cap] = Field(
        default_factory=lambda: {"all": Cap(day=3, week=10), "sms": Cap(day=1, week=3), "voice": Cap(day=1, week=2)}
    )
    quiet_hours: QuietHours | None = Field(default_factory=QuietHours)
    quiet_hours_transactional: bool = False
    caps_transactional: bool = False
    default_timezone: str = "UTC"

    @field_validator("caps")
    @classmethod
    def _cap_channels(cls, value: dict[str, Cap]) -> dict[str, Cap]:
        for name in value:
            if name != "all" and name not in CHANNELS:
                raise ValueError(f"caps: {name!r} is neither 'all' nor a channel")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value

    @classmethod
    def of(cls, workspace: Workspace) -> ContactPolicy:
        return cls.model_validate((workspace.settings or {}).get("contact_policy", {}))

    @classmethod
    def parse(cls, raw: Any) -> ContactPolicy:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "contact_policy"
            raise Invalid(f"{where}: {err['msg']}", field=where) from None


@dataclass(slots=True)
class Decision:
    outcome: Outcome
    reason: str
    explanation: list[str] = field(default_factory=list)
    until: datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    contact_id: str | None = None
    # For the sender, when allowed: the live profile and its ids, and the addresses it may use
    # (unsuppressed, oldest first) — so the pipeline does not look them up a second time.
    profile_ids: list[str] = field(default_factory=list)
    usable_addresses: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "until": self.until.isoformat() if self.until else None,
            "explanation": self.explanation,
            "evidence": self.evidence,
            "contact_id": self.contact_id,
        }


def _deny(reason: str, explanation: list[str], **evidence: Any) -> Decision:
    return Decision("deny", reason, explanation, evidence=evidence)


def _zone(name: str | None, fallback: str) -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")  # pragma: no cover


def can_contact(
    session: Session,
    workspace_id: str,
    customer_id: str,
    channel: str,
    topic: str | None,
    kind: str,
    at: datetime,
    *,
    expires_at: datetime | None = None,
) -> Decision:
    """Decide, without recording anything. See the module docstring for the rules."""
    if at.tzinfo is None:
        raise Invalid("at: a timezone-aware time", field="at")
    check_channel(channel)
    if kind not in KINDS:
        raise Invalid(f"kind: one of {', '.join(KINDS)}", field="kind")
    if kind == "marketing" and not topic:
        raise Invalid("topic: marketing messages belong to a topic", field="topic")
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise Invalid("workspace not found", field="workspace")
    policy = ContactPolicy.of(workspace)
    why: list[str] = []

    customer = session.scalar(scoped(Customer, workspace_id).where(Customer.id == customer_id))
    hops = 0
    while customer is not None and customer.merged_into is not None and hops < 32:
        customer = session.scalar(scoped(Customer, workspace_id).where(Customer.id == customer.merged_into))
        hops += 1
    if customer is None:
        return _deny("unknown_customer", [f"no customer {customer_id} in this workspace"])
    profile_ids = [
        customer.id,
        *session.scalars(
            select(Customer.id).where(Customer.workspace_id == workspace_id, Customer.merged_into == customer.id)
        ),
    ]

    # 2. reachable
    addresses = addresses_of(session, workspace_id, profile_ids, channel)
    if ADDRESS_KINDS[channel] and not addresses:
        return _deny("no_address", [f"the customer has no {'/'.join(ADDRESS_KINDS[channel])} for {channel}"])
    if addresses:
        why.append(f"reachable on {channel} ({len(addresses)} address{'es' if len(addresses) > 1 else ''})")
    usable = list(addresses)

    # 3. suppression (address level, whoever holds the address)
    if channel in SUPPRESSIBLE_CHANNELS:
        suppressed = suppressions_for(session, workspace_id, channel, addresses)
        if suppressed:
            blocked = {row.address_hash for row in suppressed}
            secret = hashing_secret(session, workspace_id)
            usable = [a for a in addresses if address_hash(secret, channel, a) not in blocked]
        if suppressed and len(suppressed) >= len(set(addresses)):
            first = suppressed[0]
            return _deny(
                "suppressed",
                [*why, f"every {channel} address is suppressed ({first.reason} since {first.created_at:%Y-%m-%d})"],
                suppression_id=first.id,
                suppression_reason=first.reason,
            )
        if suppressed:
            why.append(f"{len(suppressed)} suppressed address(es) will be skipped")

    # 4 and 5. consent
    topic_key = topic if topic and topic != ALL_TOPICS else None
    state = standing(session, workspace_id, profile_ids, channel, topic_key)
    if state.channel_wide == "opted_out":
        row = state.channel_subscription
        return _deny(
            "channel_opted_out",
            [*why, f"opted out of all {channel} messages ({row.source if row else '?'})"],
            consent_event_id=row.consent_event_id if row else None,
        )
    evidence: dict[str, Any] = {}
    if kind == "marketing":
        assert topic_key is not None
        hold = holds.active(session, workspace_id, profile_ids)
        if hold is not None:
            return _deny(
                "service_hold",
                [
                    *why,
                    f"marketing paused since {hold.created_at:%Y-%m-%d %H:%M} UTC "
                    f"(open {hold.reason.replace('_', ' ')})",
                ],
                hold_id=hold.id,
                hold_reason=hold.reason,
            )
        topic_row = session.scalar(scoped(Topic, workspace_id).where(Topic.key == topic_key))
        if topic_row is None or topic_row.archived_at is not None:
            return _deny("unknown_topic", [*why, f"no active topic {topic_key!r}"])
        if channel not in topic_row.channels:
            return _deny("topic_not_on_channel", [*why, f"topic {topic_key!r} is not sent on {channel}"])
        record = state.subscription
        evidence = {
            "consent_event_id": record.consent_event_id if record else None,
            "lawful_basis": topic_row.lawful_basis,
        }
        if state.status == "opted_out":
            return _deny(
                "opted_out",
                [*why, f"opted out of {topic_key} on {channel} ({record.source if record else '?'})"],
                **evidence,
            )
        if topic_row.lawful_basis == "consent":
            if state.status == "pending":
                return _deny(
                    "pending_confirmation", [*why, f"{topic_key} on {channel} awaits double opt-in"], **evidence
                )
            if state.status != "opted_in":
                return _deny(
                    "not_opted_in",
                    [*why, f"{topic_key} needs consent on {channel}; status is {state.status}"],
                    **evidence,
                )
            why.append(f"opted in to {topic_key} on {channel} ({record.source if record else '?'})")
        else:
            why.append(f"{topic_key} relies on {topic_row.lawful_basis.replace('_', ' ')}; no opt-out recorded")
    else:
        why.append("transactional: topic consent not needed")

    # 6 and 7. pace: caps and quiet hours, each may push the time later
    preference = preference_of(session, workspace_id, customer.id)
    zone = _zone(customer.timezone, policy.default_timezone)
    quiet: QuietWindow | None = None
    if preference is not None and preference.quiet_start and preference.quiet_end:
        quiet = QuietWindow.parse(preference.quiet_start, preference.quiet_end)
    elif policy.quiet_hours is not None:
        quiet = QuietWindow.parse(policy.quiet_hours.start, policy.quiet_hours.end)
    apply_quiet = quiet is not None and (kind == "marketing" or policy.quiet_hours_transactional)
    apply_caps = kind == "marketing" or policy.caps_transactional
    caps = _caps_for(policy, preference.frequency if preference else "any", channel) if apply_caps else []
    history = _history(session, workspace_id, profile_ids, at, caps)

    when = at
    delayed_by: list[str] = []
    for _ in range(50):
        moved = False
        for label, limit, window, channels in caps:
            recent = sorted(
                t for t, ch in history if (channels is None or ch in channels) and when - window < t <= when
            )
            if len(recent) >= limit:
                free_at = recent[len(recent) - limit] + window if limit > 0 else None
                if free_at is None:
                    return _deny("frequency_cap", [*why, f"{label} allows no messages"], cap=label)
                if free_at > when:
                    delayed_by.append(
                        f"{label} cap reached ({len(recent)}/{limit}); a slot frees at {free_at:%Y-%m-%d %H:%M} UTC"
                    )
                    when = free_at
                    moved = True
        if apply_quiet and quiet is not None:
            allowed = quiet.next_allowed(when, zone)
            if allowed != when:
                delayed_by.append(
                    f"quiet hours {quiet.start:%H:%M}–{quiet.end:%H:%M} in {zone.key}; "
                    f"next allowed {allowed.astimezone(zone):%Y-%m-%d %H:%M %Z}"
                )
                when = allowed
                moved = True
        if not moved:
            break
    if caps:
        why.append("within frequency caps" if when == at else "frequency caps checked")
    if apply_quiet and quiet is not None and when == at:
        why.append(f"outside quiet hours in {zone.key}")

    if when == at:
        decision = Decision("allow", "ok", why, evidence={**evidence, "timezone": zone.key})
        decision.profile_ids, decision.usable_addresses = profile_ids, usable
        return decision
    reason = "quiet_hours" if any(d.startswith("quiet") for d in delayed_by[-1:]) else "frequency_cap"
    if expires_at is not None and when > expires_at:
        return Decision(
            "deny",
            "expired",
            [*why, *delayed_by, f"that is after the message expires ({expires_at:%Y-%m-%d %H:%M} UTC)"],
            evidence={**evidence, "would_be": when.isoformat(), "delayed_for": reason},
        )
    return Decision("delay", reason, [*why, *delayed_by], until=when, evidence={**evidence, "timezone": zone.key})


CapRule = tuple[str, int, timedelta, frozenset[str] | None]


def _caps_for(policy: ContactPolicy, frequency: str, channel: str) -> list[CapRule]:
    rules: list[CapRule] = []
    for name, cap in policy.caps.items():
        if name not in ("all", channel):
            continue
        scope = None if name == "all" else frozenset([name])
        for window_name, limit in (("day", cap.day), ("week", cap.week)):
            if limit is not None:
                rules.append((f"{name} per {window_name}", limit, WINDOWS[window_name], scope))
    if frequency in FREQUENCY_CAPS:
        window_name, limit, window = FREQUENCY_CAPS[frequency]
        rules.append((f"customer's {frequency} preference", limit, window, None))
    return rules


def _history(
    session: Session, workspace_id: str, customer_ids: Sequence[str], at: datetime, caps: list[CapRule]
) -> list[tuple[datetime, str]]:
    if not caps:
        return []
    longest = max(window for _, _, window, _ in caps)
    rows = session.execute(
        select(Contact.at, Contact.channel).where(
            Contact.workspace_id == workspace_id,
            Contact.customer_id.in_(customer_ids),
            Contact.kind == "marketing",
            Contact.at > at - longest,
        )
    )
    return [(_utc(t), ch) for t, ch in rows]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def lock_customer(session: Session, workspace_id: str, customer_id: str) -> None:
    """Serialise decisions about one customer across workers. PostgreSQL: a row lock held to the
    end of the transaction. SQLite: the caller's write transaction (BEGIN IMMEDIATE) already
    excludes every other writer."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT id FROM customers WHERE workspace_id = :ws AND id = :id FOR UPDATE"),
            {"ws": workspace_id, "id": customer_id},
        )


def reserve_contact(
    session: Session,
    workspace_id: str,
    customer_id: str,
    channel: str,
    topic: str | None,
    kind: str,
    at: datetime,
    *,
    expires_at: datetime | None = None,
    ref: str | None = None,
) -> Decision:
    """`can_contact`, and when it allows, the contact recorded in the same locked transaction."""
    lock_customer(session, workspace_id, customer_id)
    decision = can_contact(session, workspace_id, customer_id, channel, topic, kind, at, expires_at=expires_at)
    if decision.allowed:
        contact = Contact(
            id=new_id("con"),
            workspace_id=workspace_id,
            customer_id=customer_id,
            channel=channel,
            topic=topic,
            kind=kind,
            at=at,
            weight=CHANNEL_WEIGHTS.get(channel, 1.0),
            ref=ref,
        )
        session.add(contact)
        session.flush()
        decision.contact_id = contact.id
    return decision


def contacts_since(session: Session, workspace_id: str, customer_ids: Sequence[str], since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(Contact.workspace_id == workspace_id, Contact.customer_id.in_(customer_ids), Contact.at > since)
        )
        or 0
    )
