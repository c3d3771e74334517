"""Workspaces, keys, users and the audit log: creation, lookup, revocation."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth import keys
from shopkeeper.auth.models import KEY_KINDS, ROLES, ApiKey, AuditEntry, User, Workspace
from shopkeeper.auth.passwords import hash_password
from shopkeeper.auth.principal import Principal
from shopkeeper.customers.normalize import normalise_email
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Conflict, Forbidden, Invalid, NotFound
from shopkeeper.ids import new_id
from shopkeeper.privacy.models import DEFAULT_SENSITIVE_TRAITS, SensitiveTrait

_SLUG_RE = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    return _SLUG_RE.sub("-", name.lower()).strip("-")[:60] or "workspace"


def create_workspace(
    session: Session, name: str, now: datetime, *, slug: str | None = None
) -> tuple[Workspace, str, str]:
    """A new workspace with one write key and one secret key, returned in plain text once."""
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("name: must be 1 to 200 characters", field="name")
    slug = slugify(slug or name)
    if session.scalar(select(Workspace.id).where(Workspace.slug == slug)):
        raise Conflict(f"a workspace with slug {slug!r} exists already", field="slug")
    workspace = Workspace(
        id=new_id("ws"),
        name=name,
        slug=slug,
        settings={},
        identity_epoch=0,
        signing_secret=secrets.token_hex(32),
        hashing_secret=secrets.token_hex(32),
        created_at=now,
    )
    session.add(workspace)
    session.flush()
    for trait, category in DEFAULT_SENSITIVE_TRAITS.items():
        session.add(
            SensitiveTrait(id=new_id("sen"), workspace_id=workspace.id, name=trait, category=category, created_at=now)
        )
    _, write_key = create_api_key(session, workspace.id, "write", "default write key", now)
    _, secret_key = create_api_key(session, workspace.id, "secret", "default secret key", now)
    return workspace, write_key, secret_key


def find_workspace(session: Session, ref: str) -> Workspace:
    """By id or slug (the CLI takes either)."""
    workspace = session.scalar(select(Workspace).where((Workspace.id == ref) | (Workspace.slug == ref)))
    if workspace is None:
        raise NotFound(f"no workspace with id or slug {ref!r}", field="workspace")
    return workspace


def create_api_key(session: Session, workspace_id: str, kind: str, name: str, now: datetime) -> tuple[ApiKey, str]:
    if kind not in KEY_KINDS:
        raise Invalid(f"kind: must be one of {', '.join(KEY_KINDS)}", field="kind")
    plain = keys.generate_key(kind)
    row = ApiKey(
        id=new_id("key"),
        workspace_id=workspace_id,
        kind=kind,
        name=name.strip()[:200] or kind,
        prefix=keys.display_prefix(plain),
        key_hash=keys.digest(plain),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row, plain


def revoke_api_key(session: Session, workspace_id: str, key_id: str, now: datetime) -> ApiKey:
    row = get_scoped(session, ApiKey, workspace_id, key_id, "API key")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def principal_for_key(session: Session, plain: str) -> Principal | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == keys.digest(plain), ApiKey.revoked_at.is_(None)))
    if row is None:
        return None
    return Principal(workspace_id=row.workspace_id, actor=f"key:{row.id}", role="admin", key_kind=row.kind)


def create_user(
    session: Session,
    workspace_id: str,
    *,
    email: str,
    role: str,
    now: datetime,
    name: str = "",
    password: str | None = None,
) -> User:
    normalised = normalise_email(email)
    if normalised is None:
        raise Invalid(f"email: {email!r} is not a valid address", field="email")
    if role not in ROLES:
        raise Invalid(f"role: must be one of {', '.join(ROLES)}", field="role")
    if password is not None and len(password) < 10:
        raise Invalid("password: must be at least 10 characters", field="password")
    taken = session.scalar(scoped(User, workspace_id).where(User.email == normalised))
    if taken is not None:
        raise Conflict(f"a user with email {normalised} exists in this workspace", field="email")
    user = User(
        id=new_id("usr"),
        workspace_id=workspace_id,
        email=normalised,
        name=name.strip()[:200],
        role=role,
        password_hash=hash_password(password) if password else None,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def check_role_grant(principal: Principal, role: str) -> None:
    """Only an owner makes an owner: an admin (or a secret key) cannot raise anyone, itself
    included, above the admin role."""
    if role not in ROLES:
        raise Invalid(f"role: must be one of {', '.join(ROLES)}", field="role")
    if role == "owner" and principal.role != "owner":
        raise Forbidden("role: only an owner can make someone an owner", field="role")


def update_user(
    session: Session, principal: Principal, user_id: str, changes: Mapping[str, Any]
) -> tuple[User, dict[str, Any]]:
    """Change a user's role, name, availability or whether they are disabled; returns the user and
    what changed. An owner's role and account are changed only by an owner, and the workspace
    always keeps one active owner: the last cannot be demoted or disabled (make another user owner
    first). Nobody disables their own account."""
    user = get_scoped(session, User, principal.workspace_id, user_id, "user")
    role = changes.get("role")
    disabled = changes.get("disabled")
    if role is not None and role != user.role:
        check_role_grant(principal, role)
    if (
        user.role == "owner"
        and principal.role != "owner"
        and ((role is not None and role != "owner") or disabled is True)
    ):
        raise Forbidden("only an owner can change or disable an owner", field="role" if role else "disabled")
    if disabled is True and principal.actor == f"user:{user.id}":
        raise Invalid("disabled: you cannot disable your own account", field="disabled")
    leaves_owners = user.role == "owner" and not user.disabled and ((role not in (None, "owner")) or disabled is True)
    if leaves_owners:
        # Locked in one order, so two owners demoting each other at once cannot both succeed.
        owners = session.scalars(
            select(User.id)
            .where(User.workspace_id == principal.workspace_id, User.role == "owner", User.disabled.is_(False))
            .order_by(User.id)
            .with_for_update()
        ).all()
        if not [owner for owner in owners if owner != user.id]:
            field = "role" if role not in (None, "owner") else "disabled"
            raise Conflict(
                f"{field}: {user.email} is the workspace's last owner; make another user owner first", field=field
            )
    changed: dict[str, Any] = {}
    for name in ("role", "name", "available", "disabled"):
        value = changes.get(name)
        if value is None:
            continue
        if name == "name":
            value = str(value).strip()[:200]
        if getattr(user, name) != value:
            setattr(user, name, value)
            changed[name] = value
    session.flush()
    return user, changed


def audit(
    session: Session,
    principal: Principal,
    action: str,
    *,
    subject_type: str,
    subject_id: str,
    now: datetime,
    customer_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            id=new_id("aud"),
            workspace_id=principal.workspace_id,
            actor=principal.actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            customer_id=customer_id,
            details=details or {},
            created_at=now,
        )
    )
