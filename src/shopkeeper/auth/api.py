"""Admin API for the workspace itself: settings, API keys, users and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import and_, or_

from shopkeeper import clock
from shopkeeper.auth import service
from shopkeeper.auth.models import ApiKey, AuditEntry, User, Workspace
from shopkeeper.auth.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    AuditOut,
    AuditPage,
    UserIn,
    UserOut,
    UserPatch,
    WorkspaceOut,
    WorkspacePatch,
)
from shopkeeper.channels.email.routing import check_claims
from shopkeeper.db.scoping import scoped
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.errors import NotFound
from shopkeeper.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_time_cursor, encode_cursor

router = APIRouter(prefix="/api/v1", tags=["workspace"])


@router.get("/workspace", summary="This workspace")
def get_workspace(runtime: RuntimeDep, caller: Caller) -> WorkspaceOut:
    with runtime.db.session() as session:
        ws = session.get(Workspace, caller.workspace_id)
        if ws is None:
            raise NotFound("workspace not found")
        return WorkspaceOut.model_validate(ws)


@router.patch("/workspace", summary="Rename the workspace or change its settings")
def patch_workspace(runtime: RuntimeDep, caller: Caller, body: WorkspacePatch) -> WorkspaceOut:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        ws = session.get(Workspace, caller.workspace_id)
        if ws is None:
            raise NotFound("workspace not found")
        if body.name is not None:
            ws.name = body.name.strip()
        if body.settings is not None:
            if body.settings.inbound_email:
                check_claims(session, ws.id, body.settings.inbound_email)
            ws.settings = {**(ws.settings or {}), **body.settings.model_dump(exclude_unset=True)}
        service.audit(
            session,
            caller,
            "workspace.update",
            subject_type="workspace",
            subject_id=ws.id,
            details=body.model_dump(exclude_unset=True),
            now=now,
        )
        session.flush()
        return WorkspaceOut.model_validate(ws)


@router.get("/api-keys", summary="List API keys (never the keys themselves)")
def list_keys(runtime: RuntimeDep, caller: Caller) -> list[ApiKeyOut]:
    caller.require("admin")
    with runtime.db.session() as session:
        rows = session.scalars(scoped(ApiKey, caller.workspace_id).order_by(ApiKey.created_at))
        return [ApiKeyOut.model_validate(r) for r in rows]


@router.post("/api-keys", status_code=201, summary="Create an API key")
def create_key(runtime: RuntimeDep, caller: Caller, body: ApiKeyIn) -> ApiKeyCreated:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        row, plain = service.create_api_key(session, caller.workspace_id, body.kind, body.name or body.kind, now)
        service.audit(session, caller, "api_key.create", subject_type="api_key", subject_id=row.id, now=now)
        return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=plain)


@router.delete("/api-keys/{key_id}", summary="Revoke an API key")
def revoke_key(runtime: RuntimeDep, caller: Caller, key_id: str) -> ApiKeyOut:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        row = service.revoke_api_key(session, caller.workspace_id, key_id, now)
        service.audit(session, caller, "api_key.revoke", subject_type="api_key", subject_id=row.id, now=now)
        out = ApiKeyOut.model_validate(row)
    runtime.keys.forget()
    return out


@router.get("/users", summary="List users")
def list_users(runtime: RuntimeDep, caller: Caller) -> list[UserOut]:
    with runtime.db.session() as session:
        rows = session.scalars(scoped(User, caller.workspace_id).order_by(User.created_at))
        return [UserOut.model_validate(r) for r in rows]


@router.post("/users", status_code=201, summary="Add a user")
def create_user(runtime: RuntimeDep, caller: Caller, body: UserIn) -> UserOut:
    caller.require("admin")
    service.check_role_grant(caller, body.role)
    now = clock.now()
    with runtime.db.session(write=True) as session:
        user = service.create_user(
            session,
            caller.workspace_id,
            email=body.email,
            role=body.role,
            name=body.name,
            password=body.password,
            now=now,
        )
        service.audit(
            session,
            caller,
            "user.create",
            subject_type="user",
            subject_id=user.id,
            details={"email": user.email, "role": user.role},
            now=now,
        )
        return UserOut.model_validate(user)


@router.patch(
    "/users/{user_id}",
    summary="Change a user's role, name or availability (the last owner stays an owner; only owners make owners)",
)
def patch_user(runtime: RuntimeDep, caller: Caller, user_id: str, body: UserPatch) -> UserOut:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        user, changes = service.update_user(session, caller, user_id, body.model_dump(exclude_unset=True))
        service.audit(session, caller, "user.update", subject_type="user", subject_id=user.id, details=changes, now=now)
        return UserOut.model_validate(user)


@router.get("/audit", summary="The audit log, newest first, by customer or by actor")
def list_audit(
    runtime: RuntimeDep,
    caller: Caller,
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=80)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> AuditPage:
    caller.require("admin")
    query = scoped(AuditEntry, caller.workspace_id)
    if customer_id:
        query = query.where(AuditEntry.customer_id == customer_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if cursor:
        at, id_ = decode_time_cursor(cursor)
        query = query.where(or_(AuditEntry.created_at < at, and_(AuditEntry.created_at == at, AuditEntry.id < id_)))
    with runtime.db.session() as session:
        rows = list(
            session.scalars(query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit + 1))
        )
    page = rows[:limit]
    return AuditPage(
        data=[AuditOut.model_validate(r) for r in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None,
    )
