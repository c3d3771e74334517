"""Shapes of the call-record API: one call, or a batch of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Direction = Literal["in", "out"]
Disposition = Literal["answered", "missed", "voicemail", "busy", "no_answer", "failed", "canceled", "rejected"]
MAX_BATCH = 500


class CallCustomer(BaseModel):
    """Who the customer on the call is: the caller of an inbound call, the callee of an outbound
    one. Any of these; the customer is found (or made) by identity resolution."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=64, description="any format; stored in E.164")
    customer_id: str | None = Field(default=None, max_length=40)
    user_id: str | None = Field(default=None, max_length=512)
    email: str | None = Field(default=None, max_length=320)

    @model_validator(mode="after")
    def _one_at_least(self) -> CallCustomer:
        if not any((self.phone, self.customer_id, self.user_id, self.email)):
            raise ValueError("give the customer's phone, customer_id, user_id or email")
        return self


class CallAgent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(default=None, max_length=40, description="a Shopkeeper user of this workspace")
    name: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_at_least(self) -> CallAgent:
        if not (self.user_id or (self.name and self.name.strip())):
            raise ValueError("give the agent's user_id or name")
        return self


class CallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(
        min_length=1, max_length=200, description="the call's id in the call system; a repeat is stored once"
    )
    direction: Direction
    customer: CallCustomer
    agent: CallAgent | None = None
    started_at: AwareDatetime
    duration_seconds: float = Field(default=0, ge=0, le=7 * 86400, allow_inf_nan=False)
    disposition: Disposition
    transcript: str | None = Field(default=None, max_length=100_000)
    notes: str | None = Field(default=None, max_length=20_000)
    recording_url: str | None = Field(default=None, max_length=2000)
    source: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$", description="the call system, e.g. aircall"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="anything else worth keeping (up to 16 KB)")


class CallBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calls: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="call records shaped as for POST /api/v1/calls; each is checked and stored on its own",
    )


class CallOut(BaseModel):
    id: str = Field(description="the interaction that holds the call")
    customer_id: str
    external_id: str
    direction: str
    disposition: str
    started_at: datetime
    duration_seconds: float
    subject: str
    created: bool = Field(description="false when this external_id was stored already")


class CallError(BaseModel):
    index: int
    external_id: str | None
    code: str
    message: str
    field: str | None


class CallBatchOut(BaseModel):
    stored: list[CallOut]
    created: int
    duplicates: int
    rejected: list[CallError]
