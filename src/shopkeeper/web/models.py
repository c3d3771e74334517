"""Web sessions: who is logged in to the UI, kept on the server so that logging out (or a
disabled user) ends a session everywhere, at once — a signed cookie alone could not be taken back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base, WorkspaceScoped


class WebSession(Base, WorkspaceScoped):
    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user", "workspace_id", "user_id"),)

    # SHA-256 of the cookie's random token: a copy of the table logs nobody in.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    user_agent: Mapped[str | None] = mapped_column(String(300))
