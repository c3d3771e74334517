"""Settings › Channels and providers: each channel's provider accounts in failover order (add,
edit, disable, remove; secrets shown only as ********), and the web chat's allowed origins and
identity secret. Reading is open to every role; changes need an admin, as in the API."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.auth.service import audit
from shopkeeper.channels.base import ProviderRegistry
from shopkeeper.channels.chat.api import ChatSettingsPatch
from shopkeeper.channels.chat.tokens import chat_settings, identity_secret, secret_version
from shopkeeper.consent.models import CHANNELS
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Conflict, Invalid, NotFound
from shopkeeper.messaging import provider_service
from shopkeeper.messaging.models import ChannelProvider
from shopkeeper.messaging.schemas import ProviderIn, ProviderPatch
from shopkeeper.runtime import get_runtime
from shopkeeper.web.forms import Form, checked, field_errors, optional, text, validated, values_of
from shopkeeper.web.session import Viewer, Web
from shopkeeper.web.settings.common import done, show

router = APIRouter()
PATH = "/settings/channels"
PROVIDER_FIELDS = ("provider", "name", "priority", "settings", "rate_per_second", "cost_per_unit", "currency")
ALIASES = {"channel": "provider", "type": "provider"}
MESSAGES = {
    "name": "lower-case letters, digits, '_', '-' or '.', starting with a letter or digit, up to 80",
    "currency": "a three-letter ISO 4217 code such as EUR",
    "priority": "a whole number from 0 (tried first) to 1000",
}
EXAMPLES = {
    "smtp": {
        "host": "smtp.example.com",
        "port": 587,
        "tls": "starttls",
        "username": "…",
        "password": "…",
        "from_email": "shop@example.com",
        "from_name": "Corner Shop",
    },
    "twilio": {"account_sid": "AC…", "auth_token": "…", "from": "+441234567890"},
    "webpush": {"vapid_private_key": "…", "vapid_subject": "mailto:ops@example.com"},
    "cloud_api": {"phone_number_id": "…", "access_token": "…", "app_secret": "…", "verify_token": "…"},
    "graph_api": {"page_access_token": "…", "app_secret": "…", "verify_token": "…"},
    "bot_api": {"bot_token": "…", "secret_token": "…"},
}


def _settings_json(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Invalid(
            f"settings: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})", field="settings"
        ) from None
    if not isinstance(value, dict):
        raise Invalid('settings: a JSON object, such as {"host": "smtp.example.com"}', field="settings")
    return value


def _render(
    request: Request, web: Web, *, status: int = 200, errors: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    with get_runtime(request).db.session() as s:
        rows = list(
            s.scalars(
                scoped(ChannelProvider, web.workspace_id).order_by(
                    ChannelProvider.channel, ChannelProvider.priority, ChannelProvider.name
                )
            )
        )
        workspace = s.get(Workspace, web.workspace_id)
        assert workspace is not None
        chat = {
            "origins": [str(o) for o in chat_settings(workspace).get("allowed_origins") or []],
            "secret": identity_secret(workspace),
            "version": secret_version(workspace),
        }
    channels = []
    for channel in CHANNELS:
        providers = [r for r in rows if r.channel == channel]
        channels.append(
            {
                "name": channel,
                "providers": [(r, provider_service.redacted(r.settings)) for r in providers],
                "active": [r for r in providers if r.enabled],
                "default": ProviderRegistry.default_type(channel),
            }
        )
    choices = [(c, [(f"{c}:{t}", t) for t in ProviderRegistry.types(c)]) for c in CHANNELS]
    return show(
        request,
        web,
        "channels",
        current="channels",
        status=status,
        errors=errors,
        channels=channels,
        choices=choices,
        chat=chat,
        public_url=get_runtime(request).settings.public_url.rstrip("/"),
        examples={k: json.dumps(v, indent=2, ensure_ascii=False) for k, v in EXAMPLES.items()},
        **context,
    )


@router.get(PATH)
def channels_page(request: Request, web: Viewer) -> HTMLResponse:
    return _render(request, web, values={"priority": "0", "enabled": "1"})


@router.post(f"{PATH}/providers")
def add_provider(request: Request, web: Viewer, form: Form) -> Response:
    web.principal.require("admin")
    now = clock.now()
    channel, _, type_ = text(form, "provider").partition(":")
    try:
        body = validated(
            ProviderIn,
            {
                "channel": channel,
                "type": type_,
                "name": text(form, "name"),
                "priority": text(form, "priority") or 0,
                "settings": _settings_json(text(form, "settings")),
                "rate_per_second": optional(form, "rate_per_second"),
                "cost_per_unit": optional(form, "cost_per_unit"),
                "currency": (optional(form, "currency") or "").upper() or None,
                "enabled": checked(form, "enabled"),
            },
            MESSAGES,
        )
        with get_runtime(request).db.session(write=True) as s:
            row = provider_service.create_provider(s, web.workspace_id, body.model_dump(), now)
            audit(
                s,
                web.principal,
                "provider.create",
                subject_type="provider",
                subject_id=row.id,
                details={"channel": row.channel, "name": row.name, "type": row.type},
                now=now,
            )
    except (Invalid, Conflict) as exc:
        errors = field_errors(exc, PROVIDER_FIELDS, ALIASES)
        return _render(request, web, status=exc.status, errors=errors, values=values_of(form))
    return done(PATH, "provider-added")


def _provider_page(
    request: Request,
    web: Web,
    provider_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    with get_runtime(request).db.session() as s:
        row = get_scoped(s, ChannelProvider, web.workspace_id, provider_id, "provider")
        s.expunge(row)
    shown = provider_service.redacted(row.settings)
    if values is None:
        values = {
            "priority": str(row.priority),
            "settings": json.dumps(shown, indent=2, ensure_ascii=False),
            "rate_per_second": "" if row.rate_per_second is None else f"{row.rate_per_second:g}",
            "cost_per_unit": "" if row.cost_per_unit is None else f"{row.cost_per_unit:g}",
            "currency": row.currency or "",
            "enabled": "1" if row.enabled else "",
        }
    return show(
        request,
        web,
        "provider",
        current="channels",
        status=status,
        errors=errors,
        values=values,
        provider=row,
        hidden=provider_service.HIDDEN,
    )


@router.get(PATH + "/providers/{provider_id}")
def provider_page(request: Request, web: Viewer, provider_id: str) -> HTMLResponse:
    return _provider_page(request, web, provider_id)


@router.post(PATH + "/providers/{provider_id}")
def save_provider(request: Request, web: Viewer, provider_id: str, form: Form) -> Response:
    web.principal.require("admin")
    now = clock.now()
    try:
        body = validated(
            ProviderPatch,
            {
                "priority": text(form, "priority") or 0,
                "settings": _settings_json(text(form, "settings")),
                "rate_per_second": optional(form, "rate_per_second"),
                "cost_per_unit": optional(form, "cost_per_unit"),
                "currency": (optional(form, "currency") or "").upper() or None,
                "enabled": checked(form, "enabled"),
            },
            MESSAGES,
        )
        changes = body.model_dump()
        with get_runtime(request).db.session(write=True) as s:
            row = provider_service.update_provider(s, web.workspace_id, provider_id, changes, now)
            audit(
                s,
                web.principal,
                "provider.update",
                subject_type="provider",
                subject_id=row.id,
                details={"changed": sorted(changes)},
                now=now,
            )
    except (Invalid, Conflict) as exc:
        errors = field_errors(exc, PROVIDER_FIELDS, ALIASES)
        return _provider_page(request, web, provider_id, status=exc.status, errors=errors, values=values_of(form))
    return done(PATH, "provider-saved")


@router.post(PATH + "/providers/{provider_id}/enabled")
def enable_provider(request: Request, web: Viewer, provider_id: str, form: Form) -> Response:
    web.principal.require("admin")
    now = clock.now()
    enabled = checked(form, "enabled")
    with get_runtime(request).db.session(write=True) as s:
        row = provider_service.update_provider(s, web.workspace_id, provider_id, {"enabled": enabled}, now)
        audit(
            s,
            web.principal,
            "provider.update",
            subject_type="provider",
            subject_id=row.id,
            details={"changed": ["enabled"], "enabled": enabled},
            now=now,
        )
    return done(PATH, "provider-enabled" if enabled else "provider-disabled")


@router.post(PATH + "/providers/{provider_id}/delete")
def remove_provider(request: Request, web: Viewer, provider_id: str, form: Form) -> Response:
    web.principal.require("admin")
    now = clock.now()
    with get_runtime(request).db.session(write=True) as s:
        row = get_scoped(s, ChannelProvider, web.workspace_id, provider_id, "provider")
        details = {"channel": row.channel, "name": row.name, "type": row.type}
        s.delete(row)
        audit(
            s,
            web.principal,
            "provider.delete",
            subject_type="provider",
            subject_id=provider_id,
            details=details,
            now=now,
        )
    return done(PATH, "provider-removed")


def _change_chat(request: Request, web: Web, body: ChatSettingsPatch) -> None:
    with get_runtime(request).db.session(write=True) as s:
        workspace = s.get(Workspace, web.workspace_id)
        if workspace is None:
            raise NotFound("workspace not found")
        chat = chat_settings(workspace)
        if body.allowed_origins is not None:
            chat["allowed_origins"] = body.allowed_origins
        if body.rotate_identity_secret:
            chat["secret_version"] = secret_version(workspace) + 1
        workspace.settings = {**(workspace.settings or {}), "chat": chat}
        audit(
            s,
            web.principal,
            "chat.settings",
            subject_type="workspace",
            subject_id=workspace.id,
            details=body.model_dump(exclude_unset=True),
            now=clock.now(),
        )


@router.post(PATH + "/chat")
def save_chat(request: Request, web: Viewer, form: Form) -> Response:
    web.principal.require("admin")
    origins = [line.strip() for line in text(form, "allowed_origins").splitlines() if line.strip()]
    try:
        body = validated(ChatSettingsPatch, {"allowed_origins": origins})
    except Invalid as exc:
        errors = field_errors(exc, ("allowed_origins",))
        return _render(
            request, web, status=exc.status, errors=errors, values={"allowed_origins": text(form, "allowed_origins")}
        )
    _change_chat(request, web, body)
    return done(PATH, "chat-saved")


@router.post(PATH + "/chat/rotate")
def rotate_chat_secret(request: Request, web: Viewer, form: Form) -> Response:
    web.principal.require("admin")
    _change_chat(request, web, ChatSettingsPatch(rotate_identity_secret=True))
    return done(PATH, "chat-rotated")
