"""Request and response shapes of the privacy admin API (they are also its OpenAPI schema).

Text that is stored is refused if it holds a NUL character: PostgreSQL cannot store one, and a
400 naming the field is better than a database error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Text = Field(max_length=20, description="email, sms, whatsapp, voice or push")
    address: Text = Field(min_length=1, max_length=512, description="email address, phone number or device token")
    reason: Text = Field(default="manual", max_length=20, description="hard_bounce, complaint, stop or manual")
    note: Text | None = Field(default=None, max_length=500)


class SuppressionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    channel: str
    address: str | None = Field(description="null after erasure: only the keyed hash remains")
    reason: str
    note: str | None
    created_at: datetime


class SuppressionPage(BaseModel):
    data: list[SuppressionOut]
    next_cursor: str | None


class SensitiveTraitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200, description="a top-level trait name, matched case-insensitively")
    category: Text = Field(default="other", min_length=1, max_length=40, description="health, belief, family, …")


class SensitiveTraitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    category: str
    created_at: datetime


class AllowanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trait: Text = Field(min_length=1, max_length=200)
    usage: Literal["segment", "template", "any"]
    reason: Text = Field(max_length=1000, description="why this use is justified (at least 10 characters)")


class AllowanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    trait: str
    usage: str
    reason: str
    actor: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


class EraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: Text = Field(max_length=80, description="the customer id of the URL, repeated to confirm")


class ErasureOut(BaseModel):
    customer_id: str = Field(description="the profile that was erased (the survivor, if a merged id was given)")
    erased_customer_ids: list[str] = Field(description="it and every profile merged into it")
    deleted: dict[str, int] = Field(description="rows deleted, by kind")
    suppressed_addresses: int = Field(description="suppression entries kept (by keyed hash only) for its addresses")
