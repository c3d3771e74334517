"""The channel optimiser's tables: engagement counts per workspace and per customer, and the log of
every channel it chose (what makes learning from a send's outcome happen exactly once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base, WorkspaceScoped


class ChannelStats(Base, WorkspaceScoped):
    """The population's counts per channel, spread over shards: a transaction increments a shard no
    other transaction holds (SKIP LOCKED on PostgreSQL), so concurrent writers neither queue on one
    hot row nor deadlock. The workspace's figure is the sum over its shards."""

    __tablename__ = "channel_stats"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "channel", "shard"),)

    channel: Mapped[str] = mapped_column(String(20))
    shard: Mapped[int] = mapped_column(Integer, autoincrement=False)
    trials: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class CustomerChannelStats(Base, WorkspaceScoped):
    """One customer's own counts per channel, the evidence that moves them off the population's estimate."""

    __tablename__ = "customer_channel_stats"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "customer_id", "channel"),)

    customer_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    trials: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class ChannelDecision(Base, WorkspaceScoped):
    """One send whose channel the optimiser chose, the figures behind the choice, and its outcome.

    `engaged_at` / `failed_at` are set once, by the first outcome, in the transaction that counts it."""

    __tablename__ = "channel_decisions"
    __table_args__ = (
        Index("ix_channel_decisions_customer", "workspace_id", "customer_id", "decided_at"),
        Index("ix_channel_decisions_recent", "workspace_id", "decided_at"),
    )

    send_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(500))
    value: Mapped[float] = mapped_column(Float)
    cost: Mapped[float] = mapped_column(Float)
    probability: Mapped[float] = mapped_column(Float)
    # Every candidate's figures (sampled p, value, cost, expected value, consent), for the customer page.
    figures: Mapped[list[Any]] = mapped_column(default=list)
    decided_at: Mapped[datetime]
    engaged_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    converted_at: Mapped[datetime | None]
