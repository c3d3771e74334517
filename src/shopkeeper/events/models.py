"""The append-only event log (Segment spec), one row per accepted message."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base


class Event(Base):
    """No foreign keys on purpose: this is the hottest insert path, and on PostgreSQL each FK
    check takes a row lock on the referenced customer. Integrity comes from the writer, which
    only ever writes ids it resolved in the same transaction."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "message_id"),
        Index("ix_events_customer_time", "workspace_id", "customer_id", "timestamp"),
        # By name: segments/models.py declares the two that read events by name and time (one
        # in time order, one in customer order); a plain (workspace, name, time) index would
        # only repeat the first one's prefix on every insert.
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(10))
    name: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(200))
    anonymous_id: Mapped[str | None] = mapped_column(String(200))
    group_id: Mapped[str | None] = mapped_column(String(200))
    previous_id: Mapped[str | None] = mapped_column(String(200))
    timestamp: Mapped[datetime]
    original_timestamp: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    properties: Mapped[dict[str, Any] | None]
    traits: Mapped[dict[str, Any] | None]
    context: Mapped[dict[str, Any] | None]
