"""Settings › Users: who works in this workspace and with what role; add one with a role and an
initial password, change a role, disable or enable an account (a disabled user's sessions stop
at once). Only owners make or change owners, and the last owner stays one (auth.service).
Everyone reads; admins change, as in the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shopkeeper import clock
from shopkeeper.auth import service
from shopkeeper.auth.models import ROLES, User
from shopkeeper.auth.schemas import UserIn
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import Conflict, Invalid
from shopkeeper.runtime import get_runtime
from shopkeeper.web.forms import Form, checked, field_errors, text, validated, values_of
from shopkeeper.web.session import Viewer, Web
from shopkeeper.web.settings.common import done, show

router = APIRouter()
PATH = "/settings/users"
FIELDS = ("email", "name", "role", "password")
ROLE_HELP = {
    "owner": "everything, including owners",
    "admin": "everything but owners: settings, keys, users",
    "marketer": "segments, journeys, templates, topics",
    "agent": "the inbox and customers",
    "viewer": "reads only",
}
MESSAGES = {"password": "at least 10 characters", "role": f"one of {', '.join(ROLES)}"}


def _render(
    request: Request,
    web: Web,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    row_error: tuple[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    with get_runtime(request).db.session() as s:
        users = list(s.scalars(scoped(User, web.workspace_id).order_by(User.disabled, User.created_at)))
    context.setdefault("values", {"role": "agent"})
    grantable = [r for r in ROLES if r != "owner" or web.principal.role == "owner"]
    return show(
        request,
        web,
        "users",
        current="users",
        status=status,
        errors=errors,
        users=users,
        roles=[(r, f"{r} — {ROLE_HELP[r]}") for r in grantable],
        row_roles=[(r, r) for r in ROLES],
        grantable=grantable,
        row_error=row_error,
        me=web.user.id,
        **context,
    )


@router.get(PATH)
def users_page(request: Request, web: Viewer) -> HTMLResponse:
    return _render(request, web)


@router.post(PATH)
def add_user(request: Request, web: Viewer, form: Form) -> Response:
    web.principal.require("admin")
    now = clock.now()
    try:
        password = text(form, "password")
        if not password:
            raise Invalid("password: the first password is needed to log in (at least 10 characters)", field="password")
        body = validated(
            UserIn,
            {
                "email": text(form, "email"),
                "name": text(form, "name"),
                "role": text(form, "role"),
                "password": password,
            },
            MESSAGES,
        )
        service.check_role_grant(web.principal, body.role)
        with get_runtime(request).db.session(write=True) as s:
            user = service.create_user(
                s, web.workspace_id, email=body.email, role=body.role, name=body.name, password=body.password, now=now
            )
            service.audit(
                s,
                web.principal,
                "user.create",
                subject_type="user",
                subject_id=user.id,
                details={"email": user.email, "role": user.role},
                now=now,
            )
    except (Invalid, Conflict) as exc:
        values = values_of(form)
        values.pop("password", None)  # never echoed back into the page
        return _render(request, web, status=exc.status, errors=field_errors(exc, FIELDS), values=values)
    return done(PATH, "user-added")


def _update(request: Request, web: Web, user_id: str, changes: dict[str, Any]) -> Response | None:
    """Apply and audit; a refusal the form can show (the last owner) re-renders the list."""
    now = clock.now()
    try:
        with get_runtime(request).db.session(write=True) as s:
            user, changed = service.update_user(s, web.principal, user_id, changes)
            if changed:
                service.audit(
                    s, web.principal, "user.update", subject_type="user", subject_id=user.id, details=changed, now=now
                )
    except (Invalid, Conflict) as exc:
        message = next(iter(field_errors(exc, ("role", "disabled")).values()))
        return _render(request, web, status=exc.status, row_error=(user_id, message))
    return None


@router.post(PATH + "/{user_id}/role")
def change_role(request: Request, web: Viewer, user_id: str, form: Form) -> Response:
    web.principal.require("admin")
    role = text(form, "role")
    if role not in ROLES:
        return _render(request, web, status=400, row_error=(user_id, f"choose one of {', '.join(ROLES)}"))
    return _update(request, web, user_id, {"role": role}) or done(PATH, "user-saved")


@router.post(PATH + "/{user_id}/disabled")
def disable_user(request: Request, web: Viewer, user_id: str, form: Form) -> Response:
    web.principal.require("admin")
    disabled = checked(form, "disabled")
    refused = _update(request, web, user_id, {"disabled": disabled})
    return refused or done(PATH, "user-disabled" if disabled else "user-enabled")
