"""Tables for tenants and the credentials that act inside them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base, WorkspaceScoped

ROLES = ("owner", "admin", "marketer", "agent", "viewer")
KEY_KINDS = ("write", "secret")


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Bumped whenever identities move between customers (merge, unmerge, erase) so that
    # identity caches in other processes know to drop what they hold for this workspace.
    identity_epoch: Mapped[int] = mapped_column(Integer, default=0)
    # Keys for signed links (preference centre, unsubscribe, opt-in confirmation) and for the
    # keyed hashes of suppressed addresses. Per workspace, made at creation, never shown.
    signing_secret: Mapped[str] = mapped_column(String(64))
    hashing_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class ApiKey(Base, WorkspaceScoped):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_workspace", "workspace_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    # Only a digest is stored; the prefix lets a person recognise a key in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class User(Base, WorkspaceScoped):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class AuditEntry(Base, WorkspaceScoped):
    """Who did what to whom: admin actions (trait edits, unmerges, key changes) land here."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_time", "workspace_id", "created_at"),
        Index("ix_audit_log_customer", "workspace_id", "customer_id", "created_at"),
        Index("ix_audit_log_actor", "workspace_id", "actor", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(80))
    customer_id: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
