"""Journeys' tables: the journey and its immutable versions, each customer's durable run, the
log of every step a run took, the trigger feed's cursor, and alerts.

A run is the whole state of one customer in one journey version: its step, when it is next
due, what it waits for. A worker changes a run and writes what the step did (a send, a trait,
a conversation) in one transaction, which is what makes each step happen exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base, WorkspaceScoped

STATUSES = ("draft", "active", "paused", "archived")
# active: due at next_run_at; waiting: for an event (and its timeout at next_run_at);
# completed: reached the end; exited: left early (exit event, goal, holdout, pause reason); failed.
RUN_STATES = ("active", "waiting", "completed", "exited", "failed")
LIVE_STATES = ("active", "waiting")


class Journey(Base, WorkspaceScoped):
    __tablename__ = "journeys"
    __table_args__ = (
        UniqueConstraint("workspace_id", "key"),
        Index("ix_journeys_schedule", "status", "next_fire_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # journey | campaign
    status: Mapped[str] = mapped_column(String(20), default="draft")
    # The newest saved version, and the one new entrants get (set on activation).
    latest_version: Mapped[int] = mapped_column(Integer)
    live_version: Mapped[int | None] = mapped_column(Integer)
    trigger_kind: Mapped[str] = mapped_column(String(20))
    # Entry by event / segment: what the trigger feed matches without reading the definition.
    trigger_event: Mapped[str | None] = mapped_column(String(200))
    next_fire_at: Mapped[datetime | None]  # schedule triggers
    paused_reason: Mapped[str | None] = mapped_column(String(500))
    paused_by: Mapped[str | None] = mapped_column(String(80))
    # Monitoring counts sends after this moment (a resume starts a fresh window).
    watch_from: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]


class JourneyVersion(Base, WorkspaceScoped):
    """Immutable: a customer already inside finishes on the version they entered."""

    __tablename__ = "journey_versions"
    __table_args__ = (UniqueConstraint("journey_id", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))


class JourneyRun(Base, WorkspaceScoped):
    __tablename__ = "journey_runs"
    __table_args__ = (
        # One run per entry: the same trigger seen twice (a retried event, a re-scanned
        # feed, a second worker) never enters a customer twice.
        UniqueConstraint("journey_id", "entry_key"),
        Index("ix_journey_runs_due", "state", "next_run_at"),
        Index("ix_journey_runs_customer", "workspace_id", "customer_id", "state"),
        Index("ix_journey_runs_journey", "journey_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str] = mapped_column(String(40))
    entry_key: Mapped[str] = mapped_column(String(250))
    state: Mapped[str] = mapped_column(String(20))
    step_id: Mapped[str | None] = mapped_column(String(60))
    next_run_at: Mapped[datetime | None]
    wait_event: Mapped[str | None] = mapped_column(String(200))
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    # The trigger's properties (for templates), the variant per split, send ids per step.
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    steps_taken: Mapped[int] = mapped_column(Integer, default=0)
    entered_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(String(300))
    converted_at: Mapped[datetime | None]


class JourneyStep(Base, WorkspaceScoped):
    """What each step did for each run: the per-step counts and a customer's trace."""

    __tablename__ = "journey_steps"
    __table_args__ = (
        Index("ix_journey_steps_journey", "journey_id", "step_id", "outcome"),
        Index("ix_journey_steps_run", "run_id", "at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(40))
    run_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(String(40))
    step_id: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime]


class FeedCursor(Base):
    """How far the trigger feed has read the event log (one row per feed, all workspaces)."""

    __tablename__ = "journey_feed_cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Alert(Base, WorkspaceScoped):
    """A threshold crossed (bounce, complaint, failure rate) and what was done about it."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_subject", "workspace_id", "subject_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(20))  # journey | campaign
    subject_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40))  # bounce_rate | complaint_rate | failure_rate
    message: Mapped[str] = mapped_column(String(500))
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    sends: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # paused | none
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(80))
