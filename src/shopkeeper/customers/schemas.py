"""Request and response shapes of the customer admin API (they are also its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    value: str
    source: str = Field(description="what created the link: event, api, import or unmerge")
    source_ref: str | None = Field(description="the event (event:<messageId>) or actor behind it")
    created_at: datetime


class CustomerSummary(BaseModel):
    id: str
    traits: dict[str, Any]
    timezone: str | None
    locale: str | None
    created_at: datetime
    updated_at: datetime
    identities: dict[str, list[str]] = Field(description="identifier values by kind")


class CustomerPage(BaseModel):
    data: list[CustomerSummary]
    next_cursor: str | None


class TimelineItemOut(BaseModel):
    at: datetime
    id: str
    kind: str = Field(description="event, merge, unmerge, identity_conflict, …")
    summary: str
    data: dict[str, Any]


class TimelinePage(BaseModel):
    data: list[TimelineItemOut]
    next_cursor: str | None


class MergeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    source_customer_id: str
    target_customer_id: str
    reason: str
    trigger: str | None
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None


class ConflictOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    other_customer_id: str
    kind: str
    value: str
    trigger: str | None
    created_at: datetime


class CustomerStats(BaseModel):
    events: int
    first_seen: datetime | None
    last_seen: datetime | None


class CustomerView(BaseModel):
    """The 360° view: everything known about one person, with the newest timeline page."""

    id: str
    requested_id: str = Field(description="the id asked for; differs from id when it was merged away")
    traits: dict[str, Any]
    timezone: str | None
    locale: str | None
    created_at: datetime
    updated_at: datetime
    identities: list[IdentityOut]
    merged_ids: list[str]
    merges: list[MergeOut]
    conflicts: list[ConflictOut]
    stats: CustomerStats
    sections: dict[str, Any] = Field(
        default_factory=dict, description="what other domains know: consent (statuses, pressure), segments, scores…"
    )
    timeline: TimelinePage


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    name: str | None
    message_id: str
    customer_id: str
    user_id: str | None
    anonymous_id: str | None
    group_id: str | None
    previous_id: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    properties: dict[str, Any] | None
    traits: dict[str, Any] | None
    context: dict[str, Any] | None


class EventPage(BaseModel):
    data: list[EventOut]
    next_cursor: str | None


class CustomerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    traits: dict[str, Any] | None = Field(default=None, description="traits to set; a null value removes that trait")
    timezone: str | None = Field(default=None, description="IANA zone, e.g. Europe/Paris")
    locale: str | None = Field(default=None, max_length=35)


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(
        max_length=64,
        description="user_id, email, phone, device_token, messenger_psid, telegram_chat_id, external:<system>, "
        "social:<network>",
    )
    value: str = Field(min_length=1, max_length=512)
