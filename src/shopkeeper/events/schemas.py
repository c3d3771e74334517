"""The Segment Tracking API message shapes, validated into one normalised `InboundEvent`.

Pydantic checks each field's type; `to_inbound` adds the rules that span fields (an identifier is
required, alias needs both ids) and the clock-skew correction Segment applies to `timestamp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from shopkeeper.errors import Invalid

EVENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")

Id = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    userId: Id | None = None
    anonymousId: Id | None = None
    messageId: Id | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)


class Identify(_Message):
    type: Literal["identify"] = "identify"
    traits: dict[str, Any] = Field(default_factory=dict)


class Track(_Message):
    type: Literal["track"] = "track"
    event: Name
    properties: dict[str, Any] = Field(default_factory=dict)


class Page(_Message):
    type: Literal["page"] = "page"
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    category: Annotated[str, StringConstraints(max_length=200)] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Screen(Page):
    type: Literal["screen"] = "screen"  # type: ignore[assignment]


class Group(_Message):
    type: Literal["group"] = "group"
    groupId: Name
    traits: dict[str, Any] = Field(default_factory=dict)


class Alias(_Message):
    type: Literal["alias"] = "alias"
    previousId: Name


MODELS: dict[str, type[_Message]] = {
    "identify": Identify,
    "track": Track,
    "page": Page,
    "screen": Screen,
    "group": Group,
    "alias": Alias,
}


@dataclass(slots=True)
class InboundEvent:
    """One validated message, ready for identity resolution and storage."""

    type: str
    message_id: str | None
    user_id: str | None
    anonymous_id: str | None
    name: str | None
    group_id: str | None
    previous_id: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    properties: dict[str, Any] | None
    traits: dict[str, Any] | None
    context: dict[str, Any] | None


def _aware(value: datetime | None) -> datetime | None:
    """Segment clients send ISO-8601 with an offset; a bare local time is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _in_range(value: datetime | None, field: str) -> datetime | None:
    if value is not None and not _EARLIEST <= value < _LATEST:
        raise Invalid(f"{field}: must lie between 1970 and 2200 (after clock-skew correction)", field=field)
    return value


_TIME = TypeAdapter(datetime)


def parse_time(raw: object, field: str) -> datetime | None:
    """A batch-level time such as `sentAt`, read the way the per-event fields are."""
    if raw is None:
        return None
    try:
        return _in_range(_aware(_TIME.validate_python(raw)), field)
    except ValidationError:
        raise Invalid(f"{field}: not an ISO-8601 time", field=field) from None


def _first_error(exc: ValidationError) -> Invalid:
    err = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in err["loc"]) or None
    message = err["msg"]
    if err["type"] == "missing":
        message = "is required"
    return Invalid(f"{field}: {message}" if field else message, field=field)


def to_inbound(
    raw: object,
    *,
    received_at: datetime,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
    forced_type: str | None = None,
) -> InboundEvent:
    """Validate one raw message; raises `Invalid` naming the first bad field."""
    if not isinstance(raw, dict):
        raise Invalid("each event must be a JSON object", field=None)
    kind = forced_type or raw.get("type")
    if kind not in MODELS:
        allowed = ", ".join(EVENT_TYPES)
        raise Invalid(f"type: unknown event type {kind!r}; expected one of {allowed}", field="type")
    try:
        msg = MODELS[kind].model_validate(raw)
    except ValidationError as exc:
        raise _first_error(exc) from None

    user_id = msg.userId or None
    anonymous_id = msg.anonymousId or None
    if user_id is None and anonymous_id is None:
        raise Invalid("userId or anonymousId is required", field="userId")

    sent_at = _in_range(_aware(msg.sentAt) or _aware(batch_sent_at), "sentAt")
    original = _in_range(_aware(msg.timestamp) or _aware(msg.originalTimestamp), "timestamp")
    if original is not None and sent_at is not None:
        # Segment's skew correction: the device clock may be wrong, but the interval between
        # the event and the send is right, so anchor it on our own receive time.
        timestamp = _in_range(received_at - (sent_at - original), "timestamp")
    else:
        timestamp = original or received_at
    assert timestamp is not None

    context = msg.context
    if batch_context:
        context = {**batch_context, **context}

    name = group_id = previous_id = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    if isinstance(msg, Track):
        name, properties = msg.event, msg.properties
    elif isinstance(msg, Page):  # also Screen
        name, properties = msg.name or None, msg.properties
        if msg.category:
            properties = {**properties, "category": msg.category}
    elif isinstance(msg, Identify):
        traits = msg.traits
    elif isinstance(msg, Group):
        group_id, traits = msg.groupId, msg.traits
    elif isinstance(msg, Alias):
        previous_id = msg.previousId
        if user_id is None:
            raise Invalid("userId is required for alias", field="userId")

    return InboundEvent(
        type=kind,
        message_id=msg.messageId or None,
        user_id=user_id,
        anonymous_id=anonymous_id,
        name=name,
        group_id=group_id,
        previous_id=previous_id,
        timestamp=timestamp,
        original_timestamp=original,
        sent_at=sent_at,
        received_at=received_at,
        properties=properties,
        traits=traits,
        context=context or None,
    )
