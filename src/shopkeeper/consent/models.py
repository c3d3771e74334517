"""Tables of the consent domain: what each customer agreed to, how, and how often we contacted them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base, WorkspaceScoped

CHANNELS = ("email", "sms", "push", "chat", "whatsapp", "webhook", "voice", "messenger", "telegram")
STATUSES = ("opted_in", "opted_out", "pending", "unknown")
LAWFUL_BASES = ("consent", "contract", "legitimate_interest")
KINDS = ("marketing", "transactional")
SOURCES = (
    "api",
    "identify",
    "preference-centre",
    "unsubscribe-link",
    "inbound-keyword",
    "agent",
    "double-opt-in",
    "import",
    "bounce",
    "complaint",
)
# The topic key of a channel-wide status: an opt-out here silences every topic of the channel
# (and transactional messages too); an opt-in here is not consent to any particular topic.
ALL_TOPICS = "*"


class Topic(Base, WorkspaceScoped):
    """A subscription group (newsletter, offers, order-updates), with its purpose and lawful basis."""

    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(String(500))
    lawful_basis: Mapped[str] = mapped_column(String(30))
    channels: Mapped[list[Any]] = mapped_column(default=list)
    double_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]


class Subscription(Base, WorkspaceScoped):
    """The current status for one (customer, channel, topic); its history is in ConsentEvent."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("workspace_id", "customer_id", "channel", "topic"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(40))
    consent_event_id: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime]


class ConsentEvent(Base, WorkspaceScoped):
    """Append-only proof: who changed what, through which door, seeing which words."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_customer", "workspace_id", "customer_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20))
    previous_status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(40))
    lawful_basis: Mapped[str | None] = mapped_column(String(30))
    purpose: Mapped[str | None] = mapped_column(String(500))
    wording: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime]


class Suppression(Base, WorkspaceScoped):
    """An address that must not be contacted on a channel, whoever it belongs to.

    `address_hash` (keyed HMAC) is what is matched; the plain address is kept for people to
    read, except after erasure, when only the hash remains.
    """

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("workspace_id", "channel", "address_hash"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    address_hash: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]


class ContactPreference(Base, WorkspaceScoped):
    """What the customer asked for in the preference centre: a channel, a pace, quiet hours."""

    __tablename__ = "contact_preferences"
    __table_args__ = (UniqueConstraint("workspace_id", "customer_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    preferred_channel: Mapped[str | None] = mapped_column(String(20))
    # "any", "daily" (at most one marketing message a day), "weekly", "monthly"
    frequency: Mapped[str] = mapped_column(String(20), default="any")
    quiet_start: Mapped[str | None] = mapped_column(String(5))  # "HH:MM" local
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    updated_at: Mapped[datetime]


class Contact(Base, WorkspaceScoped):
    """One message we reserved a place for: what frequency caps count and pressure weighs."""

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_customer_time", "workspace_id", "customer_id", "at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str | None] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    weight: Mapped[float] = mapped_column(Float)
    ref: Mapped[str | None] = mapped_column(String(200))


class MarketingHold(Base, WorkspaceScoped):
    """Marketing to a customer paused while service trouble is open (a complaint, a poor CSAT
    answer or review): `can_contact` denies marketing with reason `service_hold` until it is
    lifted. Transactional messages and the agents' own replies still go."""

    __tablename__ = "marketing_holds"
    __table_args__ = (Index("ix_marketing_holds_customer", "workspace_id", "customer_id", "lifted_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(40))  # complaint | poor_csat | poor_review
    source_ref: Mapped[str | None] = mapped_column(String(80))  # the conversation
    created_at: Mapped[datetime]
    lifted_at: Mapped[datetime | None]
