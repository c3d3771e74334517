"""Finding customers by any identifier (exact or prefix) or by trait values, one page at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from shopkeeper import jsonutil
from shopkeeper.customers.models import Customer, Identity
from shopkeeper.customers.normalize import normalise_email, normalise_phone
from shopkeeper.errors import Invalid

_GLOB_SPECIALS = {"*": "[*]", "?": "[?]", "[": "[[]"}


def starts_with(column: Any, prefix: str, dialect: str) -> ColumnElement[bool]:
    """A prefix match that can use a plain index on both engines.

    SQLite only uses an index for GLOB (case-sensitive, like the stored values); PostgreSQL
    uses the `text_pattern_ops` index for LIKE.
    """
    if dialect == "sqlite":
        pattern = "".join(_GLOB_SPECIALS.get(ch, ch) for ch in prefix) + "*"
        glob: ColumnElement[bool] = column.op("GLOB")(pattern)
        return glob
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like: ColumnElement[bool] = column.like(escaped + "%", escape="\\")
    return like


def identifier_variants(q: str, default_region: str | None) -> set[str]:
    """The stored forms `q` could take: as typed, lower-cased, as an email, as a phone number."""
    q = q.strip()
    variants = {q, q.lower()}
    if email := normalise_email(q):
        variants.add(email)
    if any(ch.isdigit() for ch in q) and (phone := normalise_phone(q, default_region)):
        variants.add(phone)
    return {v for v in variants if v}


def parse_trait_filter(raw: str) -> tuple[str, Any]:
    """`name:value`; the value is read as JSON when it parses (numbers, true/false), else text."""
    name, sep, value = raw.partition(":")
    name = name.strip()
    if not sep or not name or len(name) > 200:
        raise Invalid(f"trait: {raw!r} must look like name:value", field="trait")
    try:
        parsed = jsonutil.loads(value)
    except ValueError:
        parsed = value
    if isinstance(parsed, dict | list) or parsed is None:
        parsed = value
    return name, parsed


def trait_condition(name: str, value: Any) -> ColumnElement[bool]:
    element: Any = Customer.traits[name]
    condition: ColumnElement[bool]
    if isinstance(value, bool):
        condition = element.as_boolean() == value
    elif isinstance(value, int | float):
        condition = element.as_float() == float(value)
    else:
        condition = element.as_string() == str(value)
    return condition


def search_customers(
    session: Session,
    workspace_id: str,
    *,
    q: str | None,
    traits: Sequence[tuple[str, Any]],
    after_id: str | None,
    limit: int,
    default_region: str | None,
) -> list[Customer]:
    """Newest first; merged-away profiles are left out (their survivor is found instead)."""
    query = select(Customer).where(Customer.workspace_id == workspace_id, Customer.merged_into.is_(None))
    if q is not None and q.strip():
        dialect = session.get_bind().dialect.name
        variants = identifier_variants(q, default_region)
        prefixes = [v for v in variants if len(v) >= 3]
        match = or_(
            Identity.value.in_(variants),
            *(starts_with(Identity.value, p, dialect) for p in prefixes),
        )
        owners = select(Identity.customer_id).where(Identity.workspace_id == workspace_id, match)
        query = query.where(or_(Customer.id.in_(owners), Customer.id == q.strip()))
    for name, value in traits:
        query = query.where(trait_condition(name, value))
    if after_id is not None:
        query = query.where(Customer.id < after_id)
    return list(session.scalars(query.order_by(Customer.id.desc()).limit(limit)))
