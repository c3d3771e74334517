"""What every settings section shares: the side navigation, rendering a section with its form
errors and notices, and the redirect after a change."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from shopkeeper.auth.principal import ROLE_RANK
from shopkeeper.web.render import page
from shopkeeper.web.session import Web

SECTIONS = (
    ("channels", "/settings/channels", "Channels and providers"),
    ("topics", "/settings/topics", "Topics"),
    ("sensitive", "/settings/sensitive-data", "Sensitive data"),
    ("policy", "/settings/contact-policy", "Frequency caps and quiet hours"),
    ("api-keys", "/settings/api-keys", "API keys"),
    ("users", "/settings/users", "Users"),
    ("webhooks", "/settings/webhooks", "Webhooks"),
)
# Shown after a change (`?done=<key>`); a fixed list, so a link cannot put words on the page.
NOTICES = {
    "provider-added": "Provider added.",
    "provider-saved": "Provider saved.",
    "provider-enabled": "Provider enabled.",
    "provider-disabled": "Provider disabled: its channel fails over to the next one.",
    "provider-removed": "Provider removed.",
    "chat-saved": "Web chat origins saved.",
    "chat-rotated": "New identity secret: user tokens signed with the old one stop working.",
    "topic-added": "Topic added.",
    "topic-saved": "Topic saved.",
    "topic-archived": "Topic archived.",
    "topic-restored": "Topic restored.",
    "trait-added": "Trait marked as sensitive.",
    "trait-removed": "Trait no longer treated as sensitive.",
    "allowance-added": "Use allowed; the reason is recorded.",
    "allowance-revoked": "Allowance revoked; its record stays.",
    "policy-saved": "Contact policy saved.",
    "key-revoked": "API key revoked.",
    "user-added": "User added.",
    "user-saved": "Role changed.",
    "user-disabled": "User disabled and logged out.",
    "user-enabled": "User enabled.",
    "endpoint-saved": "Endpoint saved.",
    "endpoint-enabled": "Endpoint enabled.",
    "endpoint-disabled": "Endpoint disabled.",
    "endpoint-removed": "Endpoint removed.",
}


def may(web: Web, role: str) -> bool:
    return ROLE_RANK[web.principal.role] >= ROLE_RANK[role]


def show(
    request: Request,
    web: Web,
    template: str,
    *,
    current: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    **context: Any,
) -> HTMLResponse:
    """One section in the settings layout: its form errors by input, what was typed, a notice."""
    return page(
        request,
        web,
        f"app/settings/{template}.html",
        section="settings",
        status=status,
        sections=SECTIONS,
        current=current,
        errors=errors or {},
        values=values or {},
        notice=NOTICES.get(request.query_params.get("done", "")),
        is_admin=may(web, "admin"),
        **context,
    )


def done(path: str, notice: str) -> RedirectResponse:
    """After a change: back to the section (a reload does not post again), saying what happened."""
    assert notice in NOTICES
    return RedirectResponse(f"{path}?done={notice}", status_code=303)
