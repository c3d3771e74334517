"""What a messaging app's webhook said, once parsed: texts from customers and reports on ours.
The shapes differ per app; from here on the webhook router treats them all alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message from a customer."""

    sender: str  # the normalised identifier: E.164 phone, PSID, chat id
    message_id: str  # the app's id for it: a repeat delivery of the webhook is recognised by it
    text: str | None
    data: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)  # given to a profile created for the sender
    account: str | None = None  # which of our numbers or pages it came to


@dataclass(frozen=True, slots=True)
class Report:
    """The app's report on messages we sent."""

    status: str  # ours: sent, delivered, opened, failed, bounced
    message_ids: list[str] = field(default_factory=list)
    send_ref: str | None = None  # our send id, where the app echoes it back
    reason: str | None = None
    recipient: str | None = None
    # Messenger's read receipts name no message, only "everything sent before this moment".
    watermark: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)
    account: str | None = None


def from_epoch(value: object, *, millis: bool = False) -> datetime | None:
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    try:
        return datetime.fromtimestamp(number / 1000 if millis else number, UTC)
    except (OverflowError, OSError, ValueError):
        return None
