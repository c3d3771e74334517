"""A workspace's inbox settings (`workspaces.settings["inbox"]`): auto-acknowledgement, the CSAT
survey on resolution, when service trouble pauses marketing, and when a resolved conversation
is reopened rather than a new one started."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shopkeeper.auth.models import Workspace
from shopkeeper.consent.models import CHANNELS
from shopkeeper.errors import Invalid
from shopkeeper.inbox.hours import BusinessHours

# Channels a customer writes on and can be answered on (voice calls are records, not threads).
CONVERSATION_CHANNELS = ("email", "sms", "whatsapp", "chat", "messenger", "telegram")


def _channels(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    for channel in value:
        if channel not in CONVERSATION_CHANNELS:
            raise ValueError(f"{channel!r} is not a conversation channel ({', '.join(CONVERSATION_CHANNELS)})")
    return value


class AutoAck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # A template's key (its per-channel content is used), else `text` on any channel.
    template: str | None = None
    text: str = Field(
        default="Thanks for your message — we have it and will answer as soon as we can.", max_length=2000
    )
    subject: str = Field(default="We received your message", max_length=300)
    channels: list[str] | None = None  # None: every conversation channel
    only_outside_business_hours: bool = False

    @field_validator("channels")
    @classmethod
    def _check(cls, value: list[str] | None) -> list[str] | None:
        return _channels(value)


class Csat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    text: str = Field(
        default="How did we do? Rate your conversation with us from 1 (poor) to 5 (great): {{ survey_url }}",
        max_length=2000,
    )
    subject: str = Field(default="How did we do?", max_length=300)
    channels: list[str] | None = None
    poor_at_most: int = Field(default=2, ge=1, le=4)  # a score this low or lower is "poor"

    @field_validator("channels")
    @classmethod
    def _check(cls, value: list[str] | None) -> list[str] | None:
        return _channels(value)


class PauseMarketing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_complaint: bool = True
    on_poor_csat: bool = True
    on_poor_review: bool = True
    poor_review_at_most: int = Field(default=2, ge=1, le=4)  # on a 1–5 scale


class InboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto_ack: AutoAck = Field(default_factory=AutoAck)
    csat: Csat = Field(default_factory=Csat)
    pause_marketing: PauseMarketing = Field(default_factory=PauseMarketing)
    # The workspace's hours, for routing conditions and auto-acks "outside business hours".
    business_hours: dict[str, Any] | None = None
    # A customer writing within this many days of a resolution reopens that conversation.
    reopen_within_days: int = Field(default=7, ge=0, le=365)

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                BusinessHours.parse(value)
            except Invalid as exc:
                raise ValueError(exc.message) from None
        return value

    def hours(self) -> BusinessHours | None:
        return BusinessHours.parse(self.business_hours) if self.business_hours else None

    @classmethod
    def of(cls, workspace: Workspace) -> InboxSettings:
        return cls.model_validate((workspace.settings or {}).get("inbox", {}))

    @classmethod
    def parse(cls, raw: Any) -> InboxSettings:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "inbox"
            message = str(err["msg"]).removeprefix("Value error, ")
            raise Invalid(f"{where}: {message}", field=where) from None


assert set(CONVERSATION_CHANNELS) <= set(CHANNELS)
