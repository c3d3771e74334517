"""Settings › Sensitive data: the traits this workspace treats as sensitive, and the allowances
that let marketing use one anyway — each with the reason recorded, who gave it and when; revoked
ones stay on record. Everyone reads; admins change, as in the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import ApiKey, User
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import Conflict, Invalid
from shopkeeper.privacy import service
from shopkeeper.privacy.models import USAGES
from shopkeeper.privacy.schemas import AllowanceIn, SensitiveTraitIn
from shopkeeper.runtime import get_runtime
from shopkeeper.web.forms import Form, field_errors, text, validated, values_of
from shopkeeper.web.session import Viewer, Web
from shopkeeper.web.settings.common import done, show

router = APIRouter()
PATH = "/settings/sensitive-data"
TRAIT_FIELDS = ("name", "category")
ALLOWANCE_FIELDS = ("trait", "usage", "reason")
USAGE_LABELS = {"segment": "in segments", "template": "in templates", "any": "in segments and templates"}


def actor_names(session: Session, workspace_id: str) -> dict[str, str]:
    """`user:<id>` / `key:<id>` as people read them."""
    names = {f"user:{u.id}": u.name or u.email for u in session.scalars(scoped(User, workspace_id))}
    names.update({f"key:{k.id}": f"API key “{k.name}”" for k in session.scalars(scoped(ApiKey, workspace_id))})
    return names


def _render(
    request: Request, web: Web, *, status: int = 200, errors: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    with get_runtime(request).db.session() as s:
        traits = service.sensitive_traits(s, web.workspace_id)
        allowances = service.allowances(s, web.workspace_id, include_revoked=True)
        actors = actor_names(s, web.workspace_id)
    context.setdefault("values", {"category": "other", "usage": "segment"})
    return show(
        request,
        web,
        "sensitive",
        current="sensitive",
        status=status,
        errors=errors,
        traits=traits,
        trait_options=[("", "Choose…")] + [(t.name, t.name) for t in traits],
        active=[a for a in allowances if a.revoked_at is None],
        revoked=[a for a in allowances if a.revoked_at is not None],
        actors=actors,
        usages=[(u, USAGE_LABELS[u]) for u in USAGES],
        usage_labels=USAGE_LABELS,
        form_of=context.pop("form_of", ""),
        **context,
    )


@router.get(PATH)
def sensitive_page(request: Request, web: Viewer) -> HTMLResponse:
    return _render(request, web)


@router.post(PATH + "/traits")
def add_trait(request: Request, web: Viewer, form: Form) -> Response:
    web.principal.require("admin")
    try:
        body = validated(SensitiveTraitIn, {"name": text(form, "name"), "category": text(form, "category") or "other"})
        with get_runtime(request).db.session(write=True) as s:
            service.add_sensitive_trait(s, web.principal, name=body.name, category=body.category, now=clock.now())
    except (Invalid, Conflict) as exc:
        errors = field_errors(exc, TRAIT_FIELDS)
        return _render(request, web, status=exc.status, errors=errors, values=values_of(form), form_of="trait")
    return done(PATH, "trait-added")


@router.post(PATH + "/traits/{trait_id}/remove")
def remove_trait(request: Request, web: Viewer, trait_id: str, form: Form) -> Response:
    web.principal.require("admin")
    with get_runtime(request).db.session(write=True) as s:
        service.remove_sensitive_trait(s, web.principal, trait_id, clock.now())
    return done(PATH, "trait-removed")


@router.post(PATH + "/allowances")
def allow_use(request: Request, web: Viewer, form: Form) -> Response:
    web.principal.require("admin")
    try:
        body = validated(
            AllowanceIn,
            {"trait": text(form, "trait"), "usage": text(form, "usage"), "reason": text(form, "reason")},
            {"trait": "choose a sensitive trait", "usage": "choose where marketing may use it"},
        )
        with get_runtime(request).db.session(write=True) as s:
            service.allow_use(s, web.principal, trait=body.trait, usage=body.usage, reason=body.reason, now=clock.now())
    except (Invalid, Conflict) as exc:
        errors = field_errors(exc, ALLOWANCE_FIELDS)
        return _render(request, web, status=exc.status, errors=errors, values=values_of(form), form_of="allowance")
    return done(PATH, "allowance-added")


@router.post(PATH + "/allowances/{allowance_id}/revoke")
def revoke_allowance(request: Request, web: Viewer, allowance_id: str, form: Form) -> Response:
    web.principal.require("admin")
    with get_runtime(request).db.session(write=True) as s:
        service.revoke_allowance(s, web.principal, allowance_id, clock.now())
    return done(PATH, "allowance-revoked")
