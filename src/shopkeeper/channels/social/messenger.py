"""Facebook Messenger through the Send API (`graph_api`): a text to a page-scoped user id (PSID),
and the page webhook's messaging events parsed.

Outbound: POST {base_url}/{version}/me/messages with the page access token as bearer token and
`{"recipient": {"id": psid}, "messaging_type", "message": {"text"}}`. `messaging_type` is
RESPONSE (within 24 hours of the customer's last message) unless the provider sets a `tag`
(then MESSAGE_TAG with that tag, e.g. POST_PURCHASE_UPDATE).

Inbound: `entry[].messaging[]` holds `message` (from the customer; our own echoes are skipped),
`postback` (a button the customer pressed), `delivery` (the message ids now delivered) and
`read` (everything sent before the watermark has been read).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopkeeper.channels.base import OutboundMessage, ProviderError, ProviderRegistry, ProviderResult
from shopkeeper.channels.social.graph import GraphClient
from shopkeeper.channels.social.parsed import Incoming, Report, from_epoch
from shopkeeper.channels.webhook_http import items, text_of
from shopkeeper.errors import Invalid

MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")


class MessengerProvider:
    channel = "messenger"
    dedupes = False

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.graph = GraphClient(settings, "page_access_token")
        tag = settings.get("tag")
        if tag is not None and (not isinstance(tag, str) or not tag.isupper()):
            raise Invalid("settings.tag: a message tag such as POST_PURCHASE_UPDATE", field="settings.tag")
        self.tag = tag
        messaging_type = settings.get("messaging_type", "MESSAGE_TAG" if tag else "RESPONSE")
        if messaging_type not in MESSAGING_TYPES:
            allowed = ", ".join(MESSAGING_TYPES)
            raise Invalid(f"settings.messaging_type: one of {allowed}", field="settings.messaging_type")
        self.messaging_type = str(messaging_type)

    def send(self, message: OutboundMessage) -> ProviderResult:
        payload: dict[str, Any] = {
            "recipient": {"id": message.to},
            "messaging_type": self.messaging_type,
            "message": {"text": message.content.get("text", ""), "metadata": message.send_id},
        }
        if self.tag:
            payload["tag"] = self.tag
        message.commit_point()
        body = self.graph.post("me/messages", payload)
        message_id = text_of(body.get("message_id"), 300)
        if not message_id:
            raise ProviderError("the Send API answered without a message id", temporary=False, code="unconfirmed")
        return ProviderResult(message_id, status="sent", data={"recipient_id": text_of(body.get("recipient_id"), 100)})

    def close(self) -> None:
        self.graph.close()


def parse(document: Mapping[str, Any]) -> tuple[list[Incoming], list[Report]]:
    if document.get("object") != "page":
        raise Invalid("object: a page notification was expected", field="object")
    incoming: list[Incoming] = []
    reports: list[Report] = []
    for entry in items(document.get("entry")):
        page = text_of(entry.get("id"), 100)
        for event in items(entry.get("messaging")):
            sender = event.get("sender") if isinstance(event.get("sender"), dict) else {}
            assert isinstance(sender, dict)
            psid = text_of(sender.get("id"), 100)
            if not psid:
                continue
            at = from_epoch(event.get("timestamp"), millis=True)
            data: dict[str, Any] = {"sent_at": at.isoformat()} if at else {}
            message = event.get("message")
            if isinstance(message, dict):
                if message.get("is_echo"):
                    continue  # our own message, echoed back to the page
                message_id = text_of(message.get("mid"), 300)
                if not message_id:
                    continue
                quick = message.get("quick_reply")
                if isinstance(quick, dict):
                    data["payload"] = text_of(quick.get("payload"), 1000)
                attachments = [text_of(a.get("type"), 40) for a in items(message.get("attachments"))]
                if attachments:
                    data["attachments"] = attachments
                incoming.append(Incoming(psid, message_id, text_of(message.get("text")), data, account=page))
            postback = event.get("postback")
            if isinstance(postback, dict):
                message_id = text_of(postback.get("mid"), 300) or f"postback:{psid}:{event.get('timestamp')}"
                data |= {"type": "postback", "payload": text_of(postback.get("payload"), 1000)}
                incoming.append(Incoming(psid, message_id, text_of(postback.get("title")), data, account=page))
            delivery = event.get("delivery")
            if isinstance(delivery, dict):
                given = delivery.get("mids")
                mids = [m for m in (text_of(x, 300) for x in given) if m] if isinstance(given, list) else []
                if mids:
                    reports.append(Report("delivered", mids, recipient=psid, account=page))
            read = event.get("read")
            if isinstance(read, dict):
                watermark = from_epoch(read.get("watermark"), millis=True)
                if watermark is not None:
                    reports.append(Report("opened", recipient=psid, watermark=watermark, account=page))
    return incoming, reports


ProviderRegistry.register("messenger", "graph_api", MessengerProvider)
