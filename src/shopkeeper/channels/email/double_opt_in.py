"""The double opt-in confirmation email, planned in the transaction that records `pending`.

Importing this module registers `plan_confirmation` with `consent.double_opt_in`, so every
opt-in to a double-opt-in topic on email (API, identify traits, preference centre, "send me a
new link") plans a transactional send through the outbox: the `pending` status and the send
that carries its link commit together, and the delivery worker sends it like any other mail.

The content is the workspace's template with the key `double-opt-in` when there is one (with
email content, not archived), rendered with `data.confirm_url`, `data.topic.name`,
`data.topic.purpose` and `data.expires_at`; otherwise the built-in text below. A template that
cannot be used (say it reads a sensitive trait) falls back to the built-in content rather than
failing the opt-in. While one confirmation for a topic is still waiting in the outbox, asking
again plans no second one (its link is as good as a new one).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.consent.double_opt_in import OptInRequest, on_opt_in_requested
from shopkeeper.consent.service import topic_by_key
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import ShopkeeperError
from shopkeeper.messaging import send_service
from shopkeeper.messaging.models import Send, Template, TemplateVersion

log = logging.getLogger(__name__)

TEMPLATE_KEY = "double-opt-in"
SOURCE = "system"
BUILT_IN = {
    "email": {
        "subject": "Please confirm: {{ data.topic.name }} from {{ workspace.name }}",
        "text": (
            "Hello,\n\n"
            "you asked to receive {{ data.topic.name }} from {{ workspace.name }} by email"
            "{% if data.topic.purpose != blank %} ({{ data.topic.purpose }}){% endif %}.\n"
            "Please confirm by opening this link:\n\n"
            "{{ data.confirm_url }}\n\n"
            "If you did not ask for this, ignore this message: nothing will be sent to you.\n"
        ),
        "html": (
            "<html><body>"
            "<p>Hello,</p>"
            "<p>you asked to receive <strong>{{ data.topic.name }}</strong> from {{ workspace.name }} by email"
            "{% if data.topic.purpose != blank %} ({{ data.topic.purpose }}){% endif %}.</p>"
            '<p><a href="{{ data.confirm_url }}">Confirm my subscription</a></p>'
            "<p>If you did not ask for this, ignore this message: nothing will be sent to you.</p>"
            "</body></html>"
        ),
    }
}


def source_ref(request: OptInRequest) -> str:
    return f"double-opt-in:{request.channel}:{request.topic}"[:200]


def _workspace_template(session: Session, workspace_id: str) -> bool:
    template = session.scalar(scoped(Template, workspace_id).where(Template.key == TEMPLATE_KEY))
    if template is None or template.archived_at is not None:
        return False
    version = session.scalar(
        scoped(TemplateVersion, workspace_id).where(
            TemplateVersion.template_id == template.id, TemplateVersion.version == template.current_version
        )
    )
    return version is not None and "email" in (version.content or {})


def plan_confirmation(session: Session, request: OptInRequest) -> Send | None:
    """The confirmation send for this request (None when none is needed)."""
    if not request.needs_confirmation or request.channel != "email" or request.confirm_url is None:
        return None
    ref = source_ref(request)
    now = clock.now()
    waiting = session.scalar(
        scoped(Send, request.workspace_id)
        .where(
            Send.customer_id == request.customer_id,
            Send.source == SOURCE,
            Send.source_ref == ref,
            Send.status == "queued",
            Send.expires_at.is_(None) | (Send.expires_at > now),
        )
        .limit(1)
    )
    if waiting is not None:
        return waiting
    workspace = session.get(Workspace, request.workspace_id)
    if workspace is None:
        return None
    topic = topic_by_key(session, request.workspace_id, request.topic)
    data = {
        "confirm_url": request.confirm_url,
        "topic": {"key": topic.key, "name": topic.name, "purpose": topic.purpose},
        "expires_at": request.expires_at.isoformat() if request.expires_at else None,
    }

    def enqueue(**what: Any) -> Send:
        send, _ = send_service.enqueue(
            session,
            request.workspace_id,
            customer_id=request.customer_id,
            channel="email",
            now=now,
            data=data,
            kind="transactional",
            topic=request.topic,
            expires_at=request.expires_at,
            source=SOURCE,
            source_ref=ref,
            **what,
        )
        return send

    if _workspace_template(session, request.workspace_id):
        try:
            with session.begin_nested():
                return enqueue(template=TEMPLATE_KEY)
        except ShopkeeperError as exc:
            log.warning("double opt-in: template %r unusable (%s); sending the built-in text", TEMPLATE_KEY, exc)
    return enqueue(content=BUILT_IN)


def _callback(session: Session, request: OptInRequest) -> None:
    plan_confirmation(session, request)


unregister = on_opt_in_requested(_callback)
