"""The inbox's tables: conversations and their event log, teams, routing rules, SLA policies,
the triage queue, and marketing holds raised by service trouble.

A conversation is a view over interactions (`interactions.conversation_id`), not a copy of
them: the messages stay where the timeline and GDPR already find them. What the inbox adds is
state (status, assignee, SLA clocks) and an append-only event log whose integer `seq` is the
cursor agents' live streams resume from (`Last-Event-ID`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base, WorkspaceScoped

STATUSES = ("open", "pending", "snoozed", "resolved")
PRIORITIES = ("low", "normal", "high", "urgent")
SLA_STATES = ("none", "ok", "due_soon", "breached")


class Conversation(Base, WorkspaceScoped):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_list", "workspace_id", "status", "last_message_at"),
        Index("ix_conversations_customer", "workspace_id", "customer_id", "status"),
        Index("ix_conversations_sla", "status", "next_due_at"),
        Index("ix_conversations_snoozed", "status", "snoozed_until"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    # The channel of the customer's latest message: where a reply goes unless the agent picks.
    channel: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20), default="message")  # message | review | agent
    subject: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default="open")
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    tags: Mapped[list[Any]] = mapped_column(default=list)
    team_id: Mapped[str | None] = mapped_column(String(40))
    assignee_id: Mapped[str | None] = mapped_column(String(40))
    intent: Mapped[str | None] = mapped_column(String(30))
    intent_confidence: Mapped[float | None] = mapped_column(Float)
    sentiment: Mapped[str | None] = mapped_column(String(10))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sla_policy_id: Mapped[str | None] = mapped_column(String(40))
    first_response_due_at: Mapped[datetime | None]
    next_response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    # The earliest of the three dues still running: what the SLA check scans by.
    next_due_at: Mapped[datetime | None]
    sla_breached: Mapped[list[Any]] = mapped_column(default=list)  # which clocks breached
    first_response_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]
    last_outbound_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime]
    waiting_since: Mapped[datetime | None]  # the customer's oldest unanswered message
    snoozed_until: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    csat_score: Mapped[int | None] = mapped_column(Integer)
    csat_comment: Mapped[str | None] = mapped_column(Text)
    csat_sent_at: Mapped[datetime | None]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # review source and rating, etc.
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ConversationEvent(Base, WorkspaceScoped):
    """Append-only: every message, note, assignment and state change of a conversation, and the
    SLA alerts. `seq` orders them for live streams."""

    __tablename__ = "conversation_events"
    __table_args__ = (
        Index("ix_conversation_events_stream", "workspace_id", "seq"),
        Index("ix_conversation_events_conversation", "conversation_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    conversation_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(80))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class Team(Base, WorkspaceScoped):
    __tablename__ = "inbox_teams"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    members: Mapped[list[Any]] = mapped_column(default=list)  # user ids
    strategy: Mapped[str] = mapped_column(String(20), default="round_robin")  # | least_open | none
    last_assigned_id: Mapped[str | None] = mapped_column(String(40))  # the round-robin cursor
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RoutingRule(Base, WorkspaceScoped):
    __tablename__ = "inbox_routing_rules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    continue_matching: Mapped[bool] = mapped_column(Boolean, default=False)  # later rules may add to it
    conditions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SlaPolicy(Base, WorkspaceScoped):
    __tablename__ = "inbox_sla_policies"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    first_response_minutes: Mapped[int | None] = mapped_column(Integer)
    next_response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    business_hours: Mapped[dict[str, Any] | None]  # None: the clock runs around the clock
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TriageTask(Base, WorkspaceScoped):
    """An inbound message waiting to be classified and routed. Written in the message's own
    transaction, worked off by the inbox worker, so ingestion never waits for the model."""

    __tablename__ = "inbox_triage"
    __table_args__ = (Index("ix_inbox_triage_due", "done_at", "due_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(40))
    interaction_id: Mapped[str] = mapped_column(String(40))
    route: Mapped[bool] = mapped_column(Boolean, default=False)  # a new or reopened conversation
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]


class CannedReply(Base, WorkspaceScoped):
    """A saved answer in Liquid, rendered for the conversation's customer when an agent uses it."""

    __tablename__ = "inbox_canned_replies"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
