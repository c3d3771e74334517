"""Builders for webhook tests: endpoints and webhook sends, through the services the API uses."""

from __future__ import annotations

from typing import Any

from shopkeeper import clock
from shopkeeper.channels.webhook import endpoints
from shopkeeper.db.session import Database
from shopkeeper.messaging import send_service
from shopkeeper.messaging.models import WebhookEndpoint

ORDER_SHIPPED = {
    "webhook": {
        "body": '{"event": "order.shipped", "customer": {{ customer.id | json }}, '
        '"name": {{ customer.first_name | json }}, "order": {{ data.order | json }}}'
    }
}


def make_endpoint(
    db: Database, workspace_id: str, url: str, *, events: list[str] | None = None, allow_private: bool = True
) -> WebhookEndpoint:
    with db.session(write=True) as s:
        return endpoints.create_endpoint(
            s,
            workspace_id,
            url=url,
            events=events or ["*"],
            enabled=True,
            allow_private=allow_private,
            now=clock.now(),
        )


def plan_webhook(
    db: Database, workspace_id: str, customer_id: str, endpoint_id: str, *, content: Any = None, **data: Any
) -> str:
    with db.session(write=True) as s:
        send, _ = send_service.enqueue(
            s,
            workspace_id,
            customer_id=customer_id,
            channel="webhook",
            content=content or ORDER_SHIPPED,
            data={"endpoint_id": endpoint_id, **data},
            now=clock.now(),
        )
        return send.id
