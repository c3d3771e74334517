"""Customer profiles and the reversible identity graph that points identifiers at them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base, WorkspaceScoped

# messenger_psid: a Messenger page-scoped user id; telegram_chat_id: the chat a Telegram bot answers in.
IDENTITY_KINDS = ("user_id", "anonymous_id", "email", "phone", "device_token", "messenger_psid", "telegram_chat_id")
IDENTITY_KIND_PREFIXES = ("external:", "social:")


class Customer(Base, WorkspaceScoped):
    __tablename__ = "customers"
    __table_args__ = (
        # Listing newest first (ids sort by creation time).
        Index("ix_customers_workspace_id_desc", "workspace_id", "id"),
        # Only merged-away profiles have merged_into: a partial index stays tiny.
        Index(
            "ix_customers_merged_into",
            "workspace_id",
            "merged_into",
            sqlite_where=text("merged_into IS NOT NULL"),
            postgresql_where=text("merged_into IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timezone: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(35))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Set when this profile was merged into another; the survivor holds its identities and events.
    merged_into: Mapped[str | None] = mapped_column(String(40))


class Identity(Base, WorkspaceScoped):
    """One identifier → one customer, with its provenance (what created the link, and when)."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("workspace_id", "kind", "value"),
        # Search by any identifier without knowing its kind; text_pattern_ops lets PostgreSQL
        # use it for prefix matches whatever the database collation.
        Index(
            "ix_identities_value",
            "workspace_id",
            "value",
            postgresql_ops={"value": "text_pattern_ops"},
        ),
        # Leading with workspace_id as well, so that SQLite's planner (which has no statistics
        # until ANALYZE) never prefers ix_identities_value for "identities of this customer".
        Index("ix_identities_customer", "workspace_id", "customer_id", "kind"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(512))
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id", ondelete="CASCADE"))
    # "event" (with the messageId), "api", "import", "unmerge"
    source: Mapped[str] = mapped_column(String(20))
    source_ref: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Merge(Base, WorkspaceScoped):
    """One merge of `source` into `target`, with what is needed to undo it."""

    __tablename__ = "merges"
    __table_args__ = (
        Index("ix_merges_target", "workspace_id", "target_customer_id"),
        Index("ix_merges_source", "workspace_id", "source_customer_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source_customer_id: Mapped[str] = mapped_column(String(40))
    target_customer_id: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(500))
    trigger: Mapped[str | None] = mapped_column(String(200))
    identity_ids: Mapped[list[Any]] = mapped_column(default=list)
    # Profiles that had been merged into the source earlier and were re-pointed at the target.
    absorbed_customer_ids: Mapped[list[Any]] = mapped_column(default=list)
    source_traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    target_traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    undone_at: Mapped[datetime | None]
    undone_by: Mapped[str | None] = mapped_column(String(80))


class IdentityConflict(Base, WorkspaceScoped):
    """A merge that merge protection refused: two profiles with different user ids met."""

    __tablename__ = "identity_conflicts"
    __table_args__ = (
        Index("ix_identity_conflicts_customer", "workspace_id", "customer_id"),
        Index("ix_identity_conflicts_other", "workspace_id", "other_customer_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    other_customer_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(512))
    trigger: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
