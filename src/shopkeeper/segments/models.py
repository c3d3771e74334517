"""Tables of segments and customer understanding: definitions with their versions, membership
with entry and exit times, per-customer scores, fitted score models, and the scheduler's lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Double, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base, WorkspaceScoped
from shopkeeper.events.models import Event

# Event conditions read (workspace, name, time range) → customer ids. With the customer id in the
# index those reads never touch the table: measured on SQLite with 10M events, "bought before
# but not in 120 days" took 8.8 s through ix_events_name_time (800,000 row look-ups) and
# 2.7 s with this one (the whole refresh). Declared here because segments are what need it.
Index(
    "ix_events_name_time_customer",
    Event.__table__.c.workspace_id,
    Event.__table__.c.name,
    Event.__table__.c.timestamp,
    Event.__table__.c.customer_id,
)
# The same entries in customer order: "bought before, but not in 120 days" groups one event's
# rows by customer (max(timestamp) per customer), and reading them in that order aggregates as
# it goes. At 1M customers / 10M events, `lapsed_buyers` took 1.7 s of CPU to evaluate on SQLite
# through the index above (800,000 entries sorted first) and 0.65 s through this one; on
# PostgreSQL a streaming GroupAggregate replaced a HashAggregate (refresh 1.6 → 1.15 s of CPU).
# It replaced (workspace, name, timestamp), a prefix of the index above (migration 0009).
Index(
    "ix_events_name_customer_time",
    Event.__table__.c.workspace_id,
    Event.__table__.c.name,
    Event.__table__.c.customer_id,
    Event.__table__.c.timestamp,
)


class Segment(Base, WorkspaceScoped):
    """A named condition tree. `definition` and `purpose` are those of the current `version`;
    earlier ones stay in SegmentVersion."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]]
    # Time alone can change membership (a window such as "in the last 30 days"): re-checked on
    # a schedule as well as on events.
    windowed: Mapped[bool]
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    # When the scheduler must refresh it next (a new or changed definition: at once).
    refresh_due_at: Mapped[datetime | None]
    refreshed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))
    updated_by: Mapped[str] = mapped_column(String(80))
    archived_at: Mapped[datetime | None]


class SegmentVersion(Base, WorkspaceScoped):
    __tablename__ = "segment_versions"
    __table_args__ = (UniqueConstraint("segment_id", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    segment_id: Mapped[str] = mapped_column(String(40), ForeignKey("segments.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]]
    purpose: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))


class SegmentMembership(Base, WorkspaceScoped):
    """One row per (segment, customer) ever in it: `exited_at` is NULL while a member. A new
    entry reopens the row; the full history is in the "Segment Entered"/"Segment Exited"
    internal events written with every change."""

    __tablename__ = "segment_memberships"
    __table_args__ = (Index("ix_segment_memberships_customer", "workspace_id", "customer_id"),)

    segment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    entered_at: Mapped[datetime]
    exited_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer)


class CustomerScore(Base, WorkspaceScoped):
    """One computed score of one customer: a number (`value`) or a tier/group (`label`)."""

    __tablename__ = "customer_scores"
    __table_args__ = (Index("ix_customer_scores_name_value", "workspace_id", "name", "value"),)

    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[float | None] = mapped_column(Double)
    label: Mapped[str | None] = mapped_column(String(40))
    computed_at: Mapped[datetime]


class ScoreRun(Base, WorkspaceScoped):
    """One computation of a workspace's scores: the fitted parameters and what they rest on."""

    __tablename__ = "score_runs"
    __table_args__ = (Index("ix_score_runs_kind", "workspace_id", "kind", "computed_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]]
    stats: Mapped[dict[str, Any]]
    customers: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime]


class SegmentLease(Base):
    """Who runs the segment schedule now: several servers share one database, one of them
    holds the lease until `expires_at` and renews it while it works."""

    __tablename__ = "segment_leases"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    holder: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[datetime]
