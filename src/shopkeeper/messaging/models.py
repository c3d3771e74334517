"""Templates, the send outbox with its status history, and every message that crossed (interactions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base, WorkspaceScoped

# SPEC §5. A send in flight stays `queued`; its `stage` says how far a worker has taken it.
SEND_STATUSES = (
    "queued",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "complained",
    "failed",
    "suppressed",
    "skipped",
)
# Engagement only moves forward: an open after a click does not take the status back.
ENGAGEMENT_ORDER = {"sent": 1, "delivered": 2, "opened": 3, "clicked": 4, "replied": 5}
# Outcomes that override engagement (a bounce after "delivered" is still a bounce).
TERMINAL_FAILURES = ("bounced", "complained", "failed", "suppressed", "skipped")
# waiting: due at next_attempt_at; claimed: a worker holds the lease and is gating/rendering;
# handing_off: the provider may have it, so recovery never sends it again; handing_off_dedup: the
# provider drops repeats of our idempotency key, so recovery may send it again.
STAGES = ("waiting", "claimed", "handing_off", "handing_off_dedup", "done")


class Template(Base, WorkspaceScoped):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # marketing | transactional
    topic: Mapped[str | None] = mapped_column(String(80))
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]


class TemplateVersion(Base, WorkspaceScoped):
    """Immutable: a send names the version it rendered, so history shows what was really sent."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))


class Send(Base, WorkspaceScoped):
    """One planned outbound message: the outbox row a worker claims, and its current status."""

    __tablename__ = "sends"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index("ix_sends_due", "stage", "next_attempt_at"),
        Index("ix_sends_customer", "workspace_id", "customer_id", "created_at"),
        Index("ix_sends_provider_message", "provider_message_id"),
        # A journey's sends ("<journey id>:<step id>"): its funnel and its circuit breaker.
        Index("ix_sends_source_ref", "source_ref", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str | None] = mapped_column(String(80))
    template_id: Mapped[str | None] = mapped_column(String(40))
    template_version: Mapped[int | None] = mapped_column(Integer)
    # Inline content (an agent's reply) instead of a template; same shape as a template's content.
    content: Mapped[dict[str, Any] | None]
    # Values for the template beyond the profile: the triggering event's properties, computed values.
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What was asked for (hash): the same idempotency key with another request is a conflict.
    fingerprint: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20))  # api | journey | campaign | inbox | system
    source_ref: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(20), default="waiting")
    reason: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None]
    provider: Mapped[str | None] = mapped_column(String(40))
    provider_message_id: Mapped[str | None] = mapped_column(String(300))
    to_address: Mapped[str | None] = mapped_column(String(512))
    cost: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))
    units: Mapped[int | None] = mapped_column(Integer)
    interaction_id: Mapped[str | None] = mapped_column(String(40))
    # The contact reserved against the caps; released if the send does not go out after all.
    contact_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class SendEvent(Base, WorkspaceScoped):
    """A send's status history: every change with its time and reason."""

    __tablename__ = "send_events"
    __table_args__ = (Index("ix_send_events_send", "send_id", "at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    send_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime]


class Interaction(Base, WorkspaceScoped):
    """Every message that crossed between the company and a customer, either way, on any channel."""

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_customer", "workspace_id", "customer_id", "created_at"),
        Index("ix_interactions_conversation", "workspace_id", "conversation_id", "created_at"),
        Index("ix_interactions_message_id", "workspace_id", "message_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    conversation_id: Mapped[str | None] = mapped_column(String(40))
    send_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str | None] = mapped_column(String(40))
    provider_message_id: Mapped[str | None] = mapped_column(String(300))
    # The customer's side: the address it came from or went to (email, phone, device, session).
    address: Mapped[str | None] = mapped_column(String(512))
    # Email threading: this message's Message-ID and what it answers.
    message_id: Mapped[str | None] = mapped_column(String(300))
    in_reply_to: Mapped[str | None] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(String(1000))
    text: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cost: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]


class ChannelProvider(Base, WorkspaceScoped):
    """A provider account a workspace sends through; the lowest priority is tried first, the next
    on a failure (failover). With none configured a channel uses the `dev` provider."""

    __tablename__ = "channel_providers"
    __table_args__ = (UniqueConstraint("workspace_id", "channel", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(40))  # a registry name: dev, smtp, twilio, webpush, …
    priority: Mapped[int] = mapped_column(Integer, default=0)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rate_per_second: Mapped[float | None] = mapped_column(Float)
    cost_per_unit: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookEndpoint(Base, WorkspaceScoped):
    """Where outbound webhooks go, signed with the endpoint's own secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    events: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
