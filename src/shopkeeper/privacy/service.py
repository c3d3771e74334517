"""The sensitive-trait registry and the allowances that let marketing use a trait anyway.

Allowances are never deleted: revoking one stamps who and when, so the record of why a trait
was used for marketing, and until when, outlives the permission (SPEC §4, C7). Every change here
is audited with its reason.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.orm import Session

from shopkeeper.auth.principal import Principal
from shopkeeper.auth.service import audit
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Conflict, Invalid
from shopkeeper.ids import new_id
from shopkeeper.privacy.models import USAGES, SensitiveAllowance, SensitiveTrait

MIN_REASON = 10
# A top-level trait name: no path separators or quotes (a path's first segment is what counts),
# no control characters.
_NAME_RE = re.compile(r"[^.\[\]\"'\x00-\x1f\x7f]{1,200}")


def trait_key(name: str, field: str = "name") -> str:
    """How a trait name is stored and matched: trimmed and lower-cased."""
    key = name.strip().lower()
    if not _NAME_RE.fullmatch(key):
        raise Invalid(
            f"{field}: {name!r} is not a trait name (1 to 200 characters, no '.', brackets, quotes or control "
            "characters; the registry names top-level traits)",
            field=field,
        )
    return key


# -- registry ---------------------------------------------------------------------------------
def sensitive_traits(session: Session, workspace_id: str) -> list[SensitiveTrait]:
    return list(session.scalars(scoped(SensitiveTrait, workspace_id).order_by(SensitiveTrait.name)))


def add_sensitive_trait(
    session: Session, principal: Principal, *, name: str, category: str, now: datetime
) -> SensitiveTrait:
    key = trait_key(name)
    category = category.strip().lower()
    if not category or len(category) > 40:
        raise Invalid("category: 1 to 40 characters, such as health, belief or family", field="category")
    taken = session.scalar(scoped(SensitiveTrait, principal.workspace_id).where(SensitiveTrait.name == key))
    if taken is not None:
        raise Conflict(f"name: {key!r} is already a sensitive trait ({taken.id})", field="name")
    row = SensitiveTrait(
        id=new_id("sen"), workspace_id=principal.workspace_id, name=key, category=category, created_at=now
    )
    session.add(row)
    session.flush()
    audit(
        session,
        principal,
        "sensitive_trait.add",
        subject_type="sensitive_trait",
        subject_id=row.id,
        details={"name": key, "category": category},
        now=now,
    )
    return row


def remove_sensitive_trait(session: Session, principal: Principal, trait_id: str, now: datetime) -> SensitiveTrait:
    """Stop treating a trait as sensitive. Its allowances stay (they are history, and harmless)."""
    row = get_scoped(session, SensitiveTrait, principal.workspace_id, trait_id, "sensitive trait")
    session.delete(row)
    session.flush()
    audit(
        session,
        principal,
        "sensitive_trait.remove",
        subject_type="sensitive_trait",
        subject_id=row.id,
        details={"name": row.name, "category": row.category},
        now=now,
    )
    return row


# -- allowances -------------------------------------------------------------------------------
def allowances(session: Session, workspace_id: str, *, include_revoked: bool = False) -> list[SensitiveAllowance]:
    query = scoped(SensitiveAllowance, workspace_id)
    if not include_revoked:
        query = query.where(SensitiveAllowance.revoked_at.is_(None))
    return list(session.scalars(query.order_by(SensitiveAllowance.created_at.desc(), SensitiveAllowance.id.desc())))


def allow_use(
    session: Session, principal: Principal, *, trait: str, usage: str, reason: str, now: datetime
) -> SensitiveAllowance:
    """Record that marketing may use a sensitive trait in segments, templates, or both (`any`)."""
    workspace_id = principal.workspace_id
    key = trait_key(trait, "trait")
    if usage not in USAGES:
        raise Invalid(f"usage: one of {', '.join(USAGES)}", field="usage")
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise Invalid(f"reason: say why this use is justified, in at least {MIN_REASON} characters", field="reason")
    registered = session.scalar(scoped(SensitiveTrait, workspace_id).where(SensitiveTrait.name == key))
    if registered is None:
        raise Invalid(f"trait: {key!r} is not in this workspace's sensitive-trait registry", field="trait")
    active = session.scalar(
        scoped(SensitiveAllowance, workspace_id).where(
            SensitiveAllowance.trait == key,
            SensitiveAllowance.usage == usage,
            SensitiveAllowance.revoked_at.is_(None),
        )
    )
    if active is not None:
        raise Conflict(f"{key!r} is already allowed for {usage} ({active.id}); revoke it first to restate why")
    row = SensitiveAllowance(
        id=new_id("alw"),
        workspace_id=workspace_id,
        trait=key,
        usage=usage,
        reason=reason,
        actor=principal.actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit(
        session,
        principal,
        "sensitive_allowance.create",
        subject_type="sensitive_allowance",
        subject_id=row.id,
        details={"trait": key, "usage": usage, "reason": reason},
        now=now,
    )
    return row


def revoke_allowance(session: Session, principal: Principal, allowance_id: str, now: datetime) -> SensitiveAllowance:
    row = get_scoped(session, SensitiveAllowance, principal.workspace_id, allowance_id, "allowance")
    if row.revoked_at is not None:
        raise Conflict(f"allowance {row.id} was revoked already, by {row.revoked_by}", field="allowance_id")
    row.revoked_at = now
    row.revoked_by = principal.actor
    session.flush()
    audit(
        session,
        principal,
        "sensitive_allowance.revoke",
        subject_type="sensitive_allowance",
        subject_id=row.id,
        details={"trait": row.trait, "usage": row.usage, "reason": row.reason},
        now=now,
    )
    return row
