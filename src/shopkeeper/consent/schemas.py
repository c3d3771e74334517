"""Shapes of the consent admin API (also its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["email", "sms", "push", "chat", "whatsapp", "webhook", "voice", "messenger", "telegram"]
Status = Literal["opted_in", "opted_out", "pending", "unknown"]


class TopicIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=80, description="stable identifier, e.g. newsletter")
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    purpose: str = Field(max_length=500, description="what the messages are for, shown to customers")
    lawful_basis: Literal["consent", "contract", "legitimate_interest"]
    channels: list[Channel] = Field(min_length=1)
    double_opt_in: bool = False


class TopicPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    purpose: str | None = Field(default=None, min_length=1, max_length=500)
    channels: list[Channel] | None = Field(default=None, min_length=1)
    double_opt_in: bool | None = None
    archived: bool | None = None


class TopicOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    name: str
    description: str
    purpose: str
    lawful_basis: str
    channels: list[str]
    double_opt_in: bool
    created_at: datetime
    archived_at: datetime | None


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    topic: str = Field(description='a topic key, or "*" for the whole channel')
    status: str
    source: str
    consent_event_id: str
    updated_at: datetime


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    topic: str = Field(max_length=80, description='a topic key, or "*" for the whole channel (opt-out only)')
    status: Status
    wording: str | None = Field(default=None, max_length=5000, description="the words the customer saw")
    source: Literal["api", "agent", "import"] = "api"
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)


class StatusChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: list[StatusChange] = Field(min_length=1, max_length=100)


class ConsentEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    channel: str
    topic: str
    status: str
    previous_status: str
    source: str
    lawful_basis: str | None
    purpose: str | None
    wording: str | None
    ip: str | None
    user_agent: str | None
    actor: str | None
    created_at: datetime


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preferred_channel: Channel | None = None
    frequency: Literal["any", "daily", "weekly", "monthly"] = "any"
    quiet_start: str | None = Field(default=None, max_length=5, description="HH:MM, the customer's local time")
    quiet_end: str | None = Field(default=None, max_length=5)


class PreferenceOut(BaseModel):
    preferred_channel: str | None
    frequency: str
    quiet_start: str | None
    quiet_end: str | None
    updated_at: datetime | None


class ConsentSummary(BaseModel):
    """Consent as the 360° view shows it."""

    subscriptions: list[SubscriptionOut]
    preference: PreferenceOut
    contact_pressure: float = Field(description="recent messages weighted by channel intrusiveness, fading weekly")
    contacts_last_7_days: int


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    topic: str | None = Field(default=None, max_length=80)
    kind: Literal["marketing", "transactional"]
    at: datetime | None = Field(default=None, description="when the message would go; default now")
    expires_at: datetime | None = None


class DecisionOut(BaseModel):
    outcome: Literal["allow", "deny", "delay"]
    reason: str
    until: datetime | None
    explanation: list[str]
    evidence: dict[str, Any]


class PolicyOut(BaseModel):
    policy: dict[str, Any]
