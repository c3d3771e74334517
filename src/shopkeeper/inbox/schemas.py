"""Request and response bodies of the inbox API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Key = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_-]*$")


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    channel: str
    source: str
    subject: str | None
    status: str
    priority: str
    tags: list[str]
    team_id: str | None
    assignee_id: str | None
    intent: str | None
    intent_confidence: float | None
    sentiment: str | None
    sentiment_score: float | None
    sla_state: str = "none"
    sla_breached: list[str]
    first_response_due_at: datetime | None
    next_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_response_at: datetime | None
    waiting_since: datetime | None
    last_message_at: datetime
    snoozed_until: datetime | None
    resolved_at: datetime | None
    csat_score: int | None
    csat_comment: str | None
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ConversationPage(BaseModel):
    data: list[ConversationOut]
    next_cursor: str | None


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    channel: str
    direction: str
    status: str
    subject: str | None
    text: str | None
    address: str | None
    send_id: str | None
    data: dict[str, Any]
    created_at: datetime


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    id: str
    conversation_id: str
    customer_id: str
    kind: str
    actor: str
    data: dict[str, Any]
    created_at: datetime


class ThreadOut(BaseModel):
    conversation: ConversationOut
    messages: list[MessageOut]
    events: list[EventOut]
    customer: dict[str, Any] = Field(description="the customer's 360° view (GET /api/v1/customers/{id})")


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=20_000)
    canned: str | None = Field(default=None, description="a canned reply's key, rendered for the customer")
    channel: str | None = Field(default=None, description="default: the channel the customer last wrote on")
    subject: str | None = Field(default=None, max_length=500)
    send_at: datetime | None = Field(default=None, description="send later")
    agent_id: str | None = Field(default=None, description="the user answering (default: the caller)")
    idempotency_key: str | None = Field(default=None, max_length=200)


class ReplyOut(BaseModel):
    send_id: str
    status: str
    channel: str
    text: str


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=10_000)
    agent_id: str | None = None


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: list[str] = Field(default_factory=list, max_length=50)
    remove: list[str] = Field(default_factory=list, max_length=50)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee_id: str | None = None
    team: str | None = None


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: datetime


class ConversationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "pending"] | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Key
    name: str = Field(min_length=1, max_length=200)
    members: list[str] = Field(default_factory=list, max_length=500)
    strategy: Literal["round_robin", "least_open", "none"] = "round_robin"


class TeamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    members: list[str] | None = Field(default=None, max_length=500)
    strategy: Literal["round_robin", "least_open", "none"] | None = None


class TeamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    name: str
    members: list[str]
    strategy: str


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    position: int
    enabled: bool
    continue_matching: bool
    conditions: dict[str, Any]
    actions: dict[str, Any]


class SlaPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Key
    name: str = Field(min_length=1, max_length=200)
    first_response_minutes: int | None = Field(default=None, ge=1, le=525_600)
    next_response_minutes: int | None = Field(default=None, ge=1, le=525_600)
    resolution_minutes: int | None = Field(default=None, ge=1, le=525_600)
    business_hours: dict[str, Any] | None = None
    is_default: bool = False


class SlaPolicyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    name: str
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    business_hours: dict[str, Any] | None
    is_default: bool


class CannedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Key
    name: str = Field(min_length=1, max_length=200)
    body: str = Field(max_length=20_000)


class CannedPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=20_000)


class CannedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    name: str
    body: str


class AgentOut(BaseModel):
    id: str
    email: str
    name: str
    role: str
    available: bool
    open_conversations: int


class AgentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    available: bool


class CsatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int
    comment: str | None = None
