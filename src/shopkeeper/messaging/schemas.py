"""Shapes of the messaging admin API: templates, sends and their history, providers, interactions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shopkeeper.consent.schemas import Channel

Kind = Literal["marketing", "transactional"]
Key = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,79}$", description="stable identifier, e.g. welcome-email")


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Key
    name: str = Field(default="", max_length=200)
    kind: Kind = "marketing"
    topic: str | None = Field(default=None, max_length=80, description="required for marketing templates")
    content: dict[str, dict[str, str]] = Field(
        description='per channel, its parts: {"email": {"subject", "html", "text"}, "sms": {"text"}, '
        '"push": {"title", "body", "url"}, "chat": {"text"}, "whatsapp": {"text"}}'
    )


class TemplatePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    kind: Kind | None = None
    topic: str | None = Field(default=None, max_length=80)
    content: dict[str, dict[str, str]] | None = Field(default=None, description="new content: a new version")
    archived: bool | None = None


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    name: str
    kind: str
    topic: str | None
    current_version: int
    content: dict[str, Any] = Field(default_factory=dict, description="the current version's content")
    variables: list[str] = Field(default_factory=list, description="every variable the content reads")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    content: dict[str, Any]
    created_at: datetime
    created_by: str


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(max_length=40)
    channel: Channel | None = Field(default=None, description="default: every channel of the template")
    version: int | None = Field(default=None, ge=1)
    data: dict[str, Any] = Field(default_factory=dict, description='extra values, e.g. {"event": {...}}')


class PreviewOut(BaseModel):
    template_id: str
    version: int
    customer_id: str
    rendered: dict[str, dict[str, str]]
    errors: dict[str, str] = Field(default_factory=dict, description="channel → why it cannot render")


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(max_length=40)
    channel: Channel
    template: str | None = Field(default=None, max_length=80, description="template id or key")
    version: int | None = Field(default=None, ge=1, description="default: the current version")
    content: dict[str, dict[str, str]] | None = Field(default=None, description="inline content instead")
    data: dict[str, Any] = Field(default_factory=dict, description='values for the template: {"event": {...}}')
    kind: Kind | None = Field(default=None, description="default: the template's, else transactional")
    topic: str | None = Field(default=None, max_length=80)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    send_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None


class SendEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    status: str
    reason: str | None
    data: dict[str, Any]
    at: datetime


class SendOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    idempotency_key: str
    customer_id: str
    channel: str
    kind: str
    topic: str | None
    template_id: str | None
    template_version: int | None
    source: str
    source_ref: str | None
    status: str
    reason: str | None
    attempts: int
    next_attempt_at: datetime
    expires_at: datetime | None
    provider: str | None
    provider_message_id: str | None
    to_address: str | None
    cost: float | None
    currency: str | None
    units: int | None
    interaction_id: str | None
    created_at: datetime
    sent_at: datetime | None
    history: list[SendEventOut] | None = None


class SendPage(BaseModel):
    data: list[SendOut]
    next_cursor: str | None


class ProviderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    name: str = Key
    type: str = Field(max_length=40, description="dev, smtp, …")
    priority: int = Field(default=0, ge=0, le=1000, description="lowest first; the next one on failure")
    settings: dict[str, Any] = Field(default_factory=dict)
    rate_per_second: float | None = Field(default=None, gt=0, le=100_000)
    cost_per_unit: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    enabled: bool = True


class ProviderPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int | None = Field(default=None, ge=0, le=1000)
    settings: dict[str, Any] | None = None
    rate_per_second: float | None = Field(default=None, gt=0, le=100_000)
    cost_per_unit: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    enabled: bool | None = None


class ProviderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    channel: str
    name: str
    type: str
    priority: int
    settings: dict[str, Any] = Field(description="secrets (password, keys) are not shown")
    rate_per_second: float | None
    cost_per_unit: float | None
    currency: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class InteractionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    channel: str
    direction: str
    conversation_id: str | None
    send_id: str | None
    status: str
    provider: str | None
    address: str | None
    message_id: str | None
    in_reply_to: str | None
    subject: str | None
    text: str | None
    html: str | None
    data: dict[str, Any]
    cost: float | None
    created_at: datetime


class InteractionPage(BaseModel):
    data: list[InteractionOut]
    next_cursor: str | None
