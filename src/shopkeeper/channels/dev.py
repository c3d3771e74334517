"""The `dev` provider of every channel: the message goes nowhere but the local record (the
interaction row the pipeline writes holds it, and the UI shows it), so the demo and a fresh
install work with no outside account."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopkeeper.channels.base import CHANNELS, OutboundMessage, ProviderRegistry, ProviderResult
from shopkeeper.channels.sms_segments import count_segments


class DevProvider:
    dedupes = True  # nothing leaves the process: sending again changes nothing outside

    def __init__(self, channel: str, settings: Mapping[str, Any]) -> None:
        self.channel = channel
        self.domain = str(settings.get("domain", "dev.shopkeeper.invalid"))

    def send(self, message: OutboundMessage) -> ProviderResult:
        data: dict[str, Any] = {}
        units = 1
        if self.channel == "email":
            data["message_id"] = f"<{message.send_id}@{self.domain}>"
        elif self.channel == "sms":
            units = count_segments(message.content.get("text", "")).segments
        return ProviderResult(f"dev-{message.send_id}", status="delivered", units=units, data=data)

    def close(self) -> None:
        return None


def _factory(channel: str) -> Any:
    return lambda settings: DevProvider(channel, settings)


for _channel in CHANNELS:
    ProviderRegistry.register(_channel, "dev", _factory(_channel))
