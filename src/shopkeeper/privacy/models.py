"""Which traits are sensitive in a workspace, and the recorded reasons it may use them anyway."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.db.base import Base, WorkspaceScoped

# Seeded into every workspace: the special categories of GDPR art. 9 and what marketers most
# often infer from behaviour.
DEFAULT_SENSITIVE_TRAITS = {
    "health": "health",
    "pregnancy": "health",
    "pregnant": "health",
    "religion": "belief",
    "ethnicity": "origin",
    "sexual_orientation": "sex life",
    "political_views": "belief",
    "family_status": "family",
    "inferred_life_events": "inferred",
    "life_events": "inferred",
    "precise_location": "location",
}
USAGES = ("segment", "template", "any")


class SensitiveTrait(Base, WorkspaceScoped):
    __tablename__ = "sensitive_traits"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]


class SensitiveAllowance(Base, WorkspaceScoped):
    """An explicit, reasoned permission to use one sensitive trait for marketing."""

    __tablename__ = "sensitive_allowances"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    trait: Mapped[str] = mapped_column(String(200))
    usage: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(1000))
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(80))
