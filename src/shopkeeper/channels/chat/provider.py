"""The `websocket` provider, the chat channel's default: hand-off is giving the message to the
visitor's open sockets in this process and telling the other processes (PostgreSQL NOTIFY) that
it is there; a visitor who is offline gets it from the history when the widget reconnects.

The interaction row the pipeline wrote before the hand-off already holds the text, so another
process's relay reads it from there. A repeat after a crash is harmless: sockets drop an
interaction id they have shown (hence `dedupes`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopkeeper import clock
from shopkeeper.channels.base import OutboundMessage, ProviderError, ProviderRegistry, ProviderResult
from shopkeeper.channels.chat.hub import ChatHub, hub


class WebSocketChatProvider:
    channel = "chat"
    dedupes = True

    def __init__(self, settings: Mapping[str, Any], chat_hub: ChatHub | None = None) -> None:
        self.hub = chat_hub or hub

    def send(self, message: OutboundMessage) -> ProviderResult:
        interaction_id = message.metadata.get("interaction_id")
        if not isinstance(interaction_id, str):
            raise ProviderError("a chat message needs its interaction", temporary=False)
        text = message.content.get("text", "")
        message.commit_point()
        payload = {
            "id": interaction_id,
            "direction": "out",
            "text": text,
            "created_at": clock.now().isoformat(),
            "status": "sent",
        }
        reached = self.hub.publish(message.workspace_id, message.customer_id, payload)
        self.hub.announce(message.workspace_id, message.customer_id, interaction_id)
        return ProviderResult(f"chat-{interaction_id}", status="sent", data={"sockets_here": reached})

    def close(self) -> None:
        return None


ProviderRegistry.register("chat", "websocket", WebSocketChatProvider, default=True)
