"""Settings › Webhooks: outbound webhook endpoints — add one (its signing secret shown once),
enable or disable, rotate the secret (the new one shown once), remove. Everyone reads; admins
change, as in the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shopkeeper import clock
from shopkeeper.auth.service import audit
from shopkeeper.channels.webhook import endpoints
from shopkeeper.channels.webhook.schemas import EndpointIn
from shopkeeper.config import get_settings
from shopkeeper.errors import Conflict, Invalid
from shopkeeper.runtime import get_runtime
from shopkeeper.web.forms import Form, checked, field_errors, many, text, validated, values_of
from shopkeeper.web.session import Viewer, Web
from shopkeeper.web.settings.common import done, show

router = APIRouter()
PATH = "/settings/webhooks"
FIELDS = ("url", "events")


def _render(
    request: Request, web: Web, *, status: int = 200, errors: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    with get_runtime(request).db.session() as s:
        rows = [(row, endpoints.secret_hint(row.secret)) for row in endpoints.list_endpoints(s, web.workspace_id)]
    context.setdefault("values", {"events": ["*"], "enabled": "1"})
    context.setdefault("created", None)
    options = [("*", "All events, including ones added later")] + [
        (k, f"{k}: {v}") for k, v in endpoints.EVENT_TYPES.items()
    ]
    return show(
        request,
        web,
        "webhooks",
        current="webhooks",
        status=status,
        errors=errors,
        rows=rows,
        options=options,
        **context,
    )


@router.get(PATH)
def webhooks_page(request: Request, web: Viewer) -> HTMLResponse:
    return _render(request, web)


@router.post(PATH)
def add_endpoint(request: Request, web: Viewer, form: Form) -> Response:
    web.principal.require("admin")
    now = clock.now()
    try:
        body = validated(
            EndpointIn,
            {"url": text(form, "url"), "events": many(form, "events"), "enabled": checked(form, "enabled")},
            {"events": "tick at least one event", "url": "an https:// address, at most 2000 characters"},
        )
        with get_runtime(request).db.session(write=True) as s:
            row = endpoints.create_endpoint(
                s, web.workspace_id, **body.model_dump(), allow_private=get_settings().webhook_allow_private, now=now
            )
            audit(
                s,
                web.principal,
                "webhook_endpoint.create",
                subject_type="webhook_endpoint",
                subject_id=row.id,
                details={"url": row.url, "events": row.events},
                now=now,
            )
            created = {"url": row.url, "secret": row.secret, "rotated": False}
    except (Invalid, Conflict) as exc:
        values = values_of(form) | {"events": many(form, "events")}
        return _render(request, web, status=exc.status, errors=field_errors(exc, FIELDS), values=values)
    return _render(request, web, status=201, created=created)


@router.post(PATH + "/{endpoint_id}/enabled")
def enable_endpoint(request: Request, web: Viewer, endpoint_id: str, form: Form) -> Response:
    web.principal.require("admin")
    enabled = checked(form, "enabled")
    with get_runtime(request).db.session(write=True) as s:
        row = endpoints.update_endpoint(
            s, web.workspace_id, endpoint_id, {"enabled": enabled}, allow_private=get_settings().webhook_allow_private
        )
        audit(
            s,
            web.principal,
            "webhook_endpoint.update",
            subject_type="webhook_endpoint",
            subject_id=row.id,
            details={"enabled": enabled},
            now=clock.now(),
        )
    return done(PATH, "endpoint-enabled" if enabled else "endpoint-disabled")


@router.post(PATH + "/{endpoint_id}/rotate")
def rotate_secret(request: Request, web: Viewer, endpoint_id: str, form: Form) -> Response:
    web.principal.require("admin")
    with get_runtime(request).db.session(write=True) as s:
        row = endpoints.rotate_secret(s, web.workspace_id, endpoint_id)
        audit(
            s,
            web.principal,
            "webhook_endpoint.rotate_secret",
            subject_type="webhook_endpoint",
            subject_id=row.id,
            now=clock.now(),
        )
        created = {"url": row.url, "secret": row.secret, "rotated": True}
    return _render(request, web, created=created)


@router.post(PATH + "/{endpoint_id}/delete")
def remove_endpoint(request: Request, web: Viewer, endpoint_id: str, form: Form) -> Response:
    web.principal.require("admin")
    with get_runtime(request).db.session(write=True) as s:
        row = endpoints.delete_endpoint(s, web.workspace_id, endpoint_id)
        audit(
            s,
            web.principal,
            "webhook_endpoint.delete",
            subject_type="webhook_endpoint",
            subject_id=endpoint_id,
            details={"url": row.url},
            now=clock.now(),
        )
    return done(PATH, "endpoint-removed")
