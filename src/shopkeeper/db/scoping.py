"""The workspace-scoping helpers: the one way tenant rows are read, so forgetting the filter is hard."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from shopkeeper.errors import NotFound

T = TypeVar("T")


def scoped(model: type[T], workspace_id: str) -> Select[T]:
    """`SELECT model WHERE workspace_id = :ws`: start every tenant query here."""
    column: Any = model.workspace_id  # type: ignore[attr-defined]
    return select(model).where(column == workspace_id)


def get_scoped(session: Session, model: type[T], workspace_id: str, id_: str, what: str) -> T:
    """Fetch one row of this workspace by id, or raise NotFound (never another tenant's row)."""
    column: Any = model.id  # type: ignore[attr-defined]
    # populate_existing: rows may have been changed by Core statements earlier in this unit of work.
    query = scoped(model, workspace_id).where(column == id_).execution_options(populate_existing=True)
    row = session.scalars(query).first()
    if row is None:
        raise NotFound(f"{what} {id_!r} not found", field="id")
    return row


def by_key(session: Session, model: type[T], workspace_id: str, key: str) -> T | None:
    """The row of this workspace with this `key` (teams, policies, templates: what users name)."""
    column: Any = model.key  # type: ignore[attr-defined]
    return session.scalar(scoped(model, workspace_id).where(column == key))
