"""Shapes of the workspace, key, user and audit endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator


class WorkspaceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    slug: str
    settings: dict[str, Any]
    created_at: datetime


class WorkspaceSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_phone_region: str | None = Field(
        default=None, description="ISO 3166 region used to read national phone numbers, e.g. GB"
    )

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region phonenumbers knows")
        return value.upper() if value else value

    inbound_email: list[str] | None = Field(
        default=None,
        max_length=50,
        description="Addresses (support@shop.example) and domains (shop.example) whose mail the "
        "inbound SMTP server takes for this workspace: replies, bounces, complaints",
    )

    @field_validator("inbound_email")
    @classmethod
    def _inbound_addresses(cls, value: list[str] | None) -> list[str] | None:
        from shopkeeper.channels.email.routing import normalise_claims
        from shopkeeper.errors import Invalid

        if value is None:
            return None
        try:
            return normalise_claims(value)
        except Invalid as exc:
            raise ValueError(exc.message.removeprefix("settings.inbound_email: ")) from None


class WorkspacePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    settings: WorkspaceSettingsIn | None = None


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself; shown only in this response")


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["write", "secret"]
    name: str = Field(default="", max_length=200)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str
    role: str
    available: bool
    disabled: bool
    created_at: datetime


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    role: Literal["owner", "admin", "marketer", "agent", "viewer"]
    name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, min_length=10, max_length=200)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["owner", "admin", "marketer", "agent", "viewer"] | None = None
    name: str | None = Field(default=None, max_length=200)
    available: bool | None = None
    disabled: bool | None = None


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    actor: str
    action: str
    subject_type: str
    subject_id: str
    customer_id: str | None
    details: dict[str, Any]
    created_at: datetime


class AuditPage(BaseModel):
    data: list[AuditOut]
    next_cursor: str | None
