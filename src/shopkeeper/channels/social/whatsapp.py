"""WhatsApp through the Cloud API (`cloud_api`): a text to the customer's phone number, and the
webhook's messages and statuses parsed.

Outbound: POST {base_url}/{version}/{phone_number_id}/messages with the bearer token and
`{"messaging_product": "whatsapp", "to", "type": "text", "text": {"body"}}`. Our send id goes
along as `biz_opaque_callback_data`, which WhatsApp echoes in its status reports, so a report
that overtakes the worker recording the message id still finds its send. WhatsApp only lets a
business send free text within 24 hours of the customer's last message; outside that window it
refuses (error 131047), which fails the send with that reason.

Inbound: `entry[].changes[].value` holds `messages` (from the customer; `from` is the phone
number without "+") and `statuses` (sent, delivered, read → opened, failed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopkeeper.channels.base import OutboundMessage, ProviderError, ProviderRegistry, ProviderResult
from shopkeeper.channels.http_api import required
from shopkeeper.channels.social.graph import GraphClient
from shopkeeper.channels.social.parsed import Incoming, Report, from_epoch
from shopkeeper.channels.webhook_http import items, text_of
from shopkeeper.customers.normalize import normalise_phone
from shopkeeper.errors import Invalid

STATUSES = {"sent": "sent", "delivered": "delivered", "read": "opened", "failed": "failed"}
# Failures that say the number cannot receive WhatsApp at all: a bounce.
BOUNCE_ERRORS = {131026}


class WhatsAppProvider:
    channel = "whatsapp"
    dedupes = False

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.phone_number_id = required(settings, "phone_number_id", "the WhatsApp business number's id")
        self.graph = GraphClient(settings, "access_token")

    def send(self, message: OutboundMessage) -> ProviderResult:
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to.lstrip("+"),
            "type": "text",
            "text": {"body": message.content.get("text", ""), "preview_url": False},
            "biz_opaque_callback_data": message.send_id,
        }
        message.commit_point()
        body = self.graph.post(f"{self.phone_number_id}/messages", payload)
        sent = items(body.get("messages")) if isinstance(body.get("messages"), list) else []
        message_id = text_of(sent[0].get("id"), 300) if sent else None
        if not message_id:
            raise ProviderError("the Cloud API answered without a message id", temporary=False, code="unconfirmed")
        return ProviderResult(message_id, status="sent", data={"message_status": sent[0].get("message_status")})

    def close(self) -> None:
        self.graph.close()


def phone_of(wa_id: object) -> str | None:
    digits = text_of(wa_id, 32)
    if not digits:
        return None
    return normalise_phone(digits if digits.startswith("+") else f"+{digits}")


def _body(message: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The text of a message of any type, and what else to keep about it."""
    kind = text_of(message.get("type"), 40) or "unknown"
    data: dict[str, Any] = {"type": kind}
    part = message.get(kind) if isinstance(message.get(kind), dict) else {}
    assert isinstance(part, dict)
    if kind == "text":
        return text_of(part.get("body")), data
    if kind == "button":
        return text_of(part.get("text")), data
    if kind == "interactive":
        for choice in ("button_reply", "list_reply"):
            if isinstance(part.get(choice), dict):
                data["reply_id"] = text_of(part[choice].get("id"), 200)
                return text_of(part[choice].get("title")), data
        return None, data
    if kind in ("image", "video", "document", "audio", "sticker"):
        data["media_id"] = text_of(part.get("id"), 200)
        return text_of(part.get("caption")), data
    if kind == "reaction":
        data["reacts_to"] = text_of(part.get("message_id"), 300)
        return text_of(part.get("emoji"), 20), data
    return None, data


def parse(document: Mapping[str, Any]) -> tuple[list[Incoming], list[Report]]:
    if document.get("object") != "whatsapp_business_account":
        raise Invalid("object: a WhatsApp Business Account notification was expected", field="object")
    incoming: list[Incoming] = []
    reports: list[Report] = []
    for entry in items(document.get("entry")):
        for change in items(entry.get("changes")):
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
            assert isinstance(metadata, dict)
            account = text_of(metadata.get("phone_number_id"), 100)
            names = {
                text_of(c.get("wa_id"), 32): text_of((c.get("profile") or {}).get("name"), 200)
                for c in items(value.get("contacts"))
                if isinstance(c.get("profile") or {}, dict)
            }
            for message in items(value.get("messages")):
                sender, message_id = phone_of(message.get("from")), text_of(message.get("id"), 300)
                if sender is None or not message_id:
                    continue
                text, data = _body(message)
                sent_at = from_epoch(message.get("timestamp"))
                if sent_at is not None:
                    data["sent_at"] = sent_at.isoformat()
                name = names.get(text_of(message.get("from"), 32))
                incoming.append(Incoming(sender, message_id, text, data, {"name": name} if name else {}, account))
            for status in items(value.get("statuses")):
                ours = STATUSES.get(text_of(status.get("status"), 40) or "")
                message_id = text_of(status.get("id"), 300)
                if ours is None or not message_id:
                    continue
                errors = items(status.get("errors"))
                codes = [e.get("code") for e in errors]
                reason = None
                if errors:
                    first = errors[0]
                    reason = f"error {first.get('code')}: {text_of(first.get('title'), 300) or 'failed'}"
                if ours == "failed" and any(code in BOUNCE_ERRORS for code in codes):
                    ours = "bounced"
                reports.append(
                    Report(
                        ours,
                        [message_id],
                        send_ref=text_of(status.get("biz_opaque_callback_data"), 40),
                        reason=reason,
                        recipient=phone_of(status.get("recipient_id")),
                        data={"provider_status": status.get("status")},
                        account=account,
                    )
                )
    return incoming, reports


ProviderRegistry.register("whatsapp", "cloud_api", WhatsAppProvider)
