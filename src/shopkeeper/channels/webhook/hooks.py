"""The webhook channel's steps in the delivery pipeline: find the send's endpoint (URL and secret,
read in the transaction that prepares the send, so a disabled or deleted endpoint is never
called), and disable an endpoint whose receiver answered 410 Gone."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import AuditEntry
from shopkeeper.channels.webhook.endpoints import disable
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import Invalid
from shopkeeper.ids import new_id
from shopkeeper.messaging import channel_hooks
from shopkeeper.messaging.models import Send, WebhookEndpoint

log = logging.getLogger(__name__)
SYSTEM_ACTOR = "system:webhooks"


def endpoint_of(send: Send) -> str:
    endpoint_id = (send.data or {}).get("endpoint_id")
    if not isinstance(endpoint_id, str) or not endpoint_id:
        raise Invalid("data.endpoint_id: a webhook send names the endpoint it goes to", field="data.endpoint_id")
    return endpoint_id


class WebhookHooks:
    def prepare(self, session: Session, send: Send) -> Mapping[str, Any]:
        endpoint_id = endpoint_of(send)
        endpoint = session.scalar(scoped(WebhookEndpoint, send.workspace_id).where(WebhookEndpoint.id == endpoint_id))
        if endpoint is None:
            raise Invalid(f"data.endpoint_id: no webhook endpoint {endpoint_id!r}", field="data.endpoint_id")
        if not endpoint.enabled:
            raise Invalid(f"data.endpoint_id: webhook endpoint {endpoint_id} is disabled", field="data.endpoint_id")
        event = (send.data or {}).get("event")
        # Only for published events: other sends carry a triggering event of their own in `event`.
        event_type = event.get("type") if send.source == "system" and isinstance(event, Mapping) else None
        return {
            "webhook": {
                "endpoint_id": endpoint.id,
                "url": endpoint.url,
                "secret": endpoint.secret,
                "event_type": event_type if isinstance(event_type, str) else None,
            }
        }

    def failed(self, session: Session, send: Send, code: str | None) -> None:
        if code != "gone":
            return
        endpoint_id = (send.data or {}).get("endpoint_id")
        if not isinstance(endpoint_id, str):
            return
        endpoint = disable(session, send.workspace_id, endpoint_id)
        if endpoint is None:
            return
        log.warning("webhooks: endpoint %s answered 410 Gone; disabled", endpoint_id)
        session.add(
            AuditEntry(
                id=new_id("aud"),
                workspace_id=send.workspace_id,
                actor=SYSTEM_ACTOR,
                action="webhook_endpoint.disable",
                subject_type="webhook_endpoint",
                subject_id=endpoint_id,
                customer_id=None,
                details={"reason": "the receiver answered 410 Gone", "send_id": send.id, "url": endpoint.url},
                created_at=clock.now(),
            )
        )


channel_hooks.register("webhook", WebhookHooks())
