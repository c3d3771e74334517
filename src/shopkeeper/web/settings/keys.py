"""Settings › API keys: the workspace's keys by name, kind and prefix (never the key itself),
create one — its plain text shown on that page once, then only its digest is kept — and revoke.
Admins only, reading too, as in the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shopkeeper import clock
from shopkeeper.auth import service
from shopkeeper.auth.models import ApiKey
from shopkeeper.auth.schemas import ApiKeyIn
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import Conflict, Invalid
from shopkeeper.runtime import get_runtime
from shopkeeper.web.forms import Form, field_errors, text, validated, values_of
from shopkeeper.web.session import Viewer, Web
from shopkeeper.web.settings.common import done, show

router = APIRouter()
PATH = "/settings/api-keys"
FIELDS = ("kind", "name")
KINDS = (
    ("secret", "Secret: the admin API (keep it on your servers)"),
    ("write", "Write: send events only (safe in a browser or app)"),
)


def _render(
    request: Request, web: Web, *, status: int = 200, errors: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    with get_runtime(request).db.session() as s:
        keys = list(
            s.scalars(scoped(ApiKey, web.workspace_id).order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at))
        )
    context.setdefault("values", {"kind": "secret"})
    context.setdefault("created", None)
    return show(
        request, web, "api_keys", current="api-keys", status=status, errors=errors, keys=keys, kinds=KINDS, **context
    )


@router.get(PATH)
def keys_page(request: Request, web: Viewer) -> HTMLResponse:
    web.principal.require("admin")
    return _render(request, web)


@router.post(PATH)
def create_key(request: Request, web: Viewer, form: Form) -> Response:
    web.principal.require("admin")
    now = clock.now()
    try:
        body = validated(
            ApiKeyIn, {"kind": text(form, "kind"), "name": text(form, "name")}, {"kind": "choose secret or write"}
        )
        with get_runtime(request).db.session(write=True) as s:
            row, plain = service.create_api_key(s, web.workspace_id, body.kind, body.name or body.kind, now)
            service.audit(
                s,
                web.principal,
                "api_key.create",
                subject_type="api_key",
                subject_id=row.id,
                details={"kind": row.kind, "name": row.name},
                now=now,
            )
    except (Invalid, Conflict) as exc:
        return _render(request, web, status=exc.status, errors=field_errors(exc, FIELDS), values=values_of(form))
    # The one time the key is seen: on this answer (never in a URL, a log or the database).
    return _render(request, web, status=201, created={"id": row.id, "name": row.name, "kind": row.kind, "key": plain})


@router.post(PATH + "/{key_id}/revoke")
def revoke_key(request: Request, web: Viewer, key_id: str, form: Form) -> Response:
    web.principal.require("admin")
    now = clock.now()
    runtime = get_runtime(request)
    with runtime.db.session(write=True) as s:
        row = service.revoke_api_key(s, web.workspace_id, key_id, now)
        service.audit(s, web.principal, "api_key.revoke", subject_type="api_key", subject_id=row.id, now=now)
    runtime.keys.forget()
    return done(PATH, "key-revoked")
