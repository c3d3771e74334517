"""Shapes of the webhook endpoint admin API; the signing secret appears in an answer only when it
is made (create, rotate)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

Url = Field(max_length=2000, description="https:// address the events are POSTed to")
Events = Field(
    min_length=1,
    max_length=50,
    description='event types to receive: "send.status_changed", "call.recorded", or "*" for all',
)


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Url
    events: list[str] = Events
    enabled: bool = True


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    events: list[str] | None = Field(default=None, min_length=1, max_length=50)
    enabled: bool | None = None


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime
    secret_hint: str = Field(default="", description="the secret's last characters, to tell secrets apart")


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="the signing secret: shown this once; store it with the receiver")
