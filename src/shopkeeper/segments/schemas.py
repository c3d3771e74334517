"""Request and response bodies of the segments and scores API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=80, description="lower-case letters, digits, '_', '-', '.'")
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=5000)
    purpose: str = Field(default="marketing", description="marketing (the default) or transactional")
    conditions: dict[str, Any] = Field(description="the condition tree; see docs/segments.md")


class SegmentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    purpose: str | None = None
    conditions: dict[str, Any] | None = None


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    name: str
    description: str
    purpose: str
    version: int
    conditions: dict[str, Any] = Field(validation_alias="definition")
    windowed: bool
    member_count: int
    refreshed_at: datetime | None
    refresh_due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    archived_at: datetime | None


class SegmentPage(BaseModel):
    data: list[SegmentOut]
    next_cursor: str | None


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    purpose: str
    conditions: dict[str, Any] = Field(validation_alias="definition")
    created_at: datetime
    created_by: str


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    customer_id: str
    entered_at: datetime
    version: int


class MemberPage(BaseModel):
    data: list[MemberOut]
    next_cursor: str | None


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conditions: dict[str, Any]
    purpose: str = "marketing"
    limit: int = Field(default=10, ge=0, le=100)


class PreviewCustomer(BaseModel):
    id: str
    traits: dict[str, Any]


class PreviewOut(BaseModel):
    count: int
    customers: list[PreviewCustomer]
    milliseconds: float


class RefreshOut(BaseModel):
    members: int
    entered: int
    exited: int
    seconds: float


class ScoreRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    params: dict[str, Any]
    stats: dict[str, Any]
    customers: int
    computed_at: datetime


class ScoresOut(BaseModel):
    runs: list[ScoreRunOut]


class CustomerScoreOut(BaseModel):
    value: float | None
    label: str | None
    computed_at: datetime


class CustomerSegmentOut(BaseModel):
    id: str
    key: str
    name: str
    entered_at: datetime
    version: int


class UnderstandingOut(BaseModel):
    customer_id: str
    scores: dict[str, CustomerScoreOut]
    segments: list[CustomerSegmentOut]


class SegmentsSection(BaseModel):
    """The 360° view's "segments" section (`sections.segments` of GET /customers/{id})."""

    memberships: list[CustomerSegmentOut] = Field(description="segments the customer is in now, by key")
    scores: dict[str, CustomerScoreOut] = Field(
        description="stored scores by name: rfm*, clv, clv_tier, p_alive, churn_risk, "
        "expected_purchases_90d, nps, nps_group, csat — those computed for this customer"
    )
