"""The provider interface every channel speaks, and the registry that maps names to providers.

A provider gets one rendered `OutboundMessage` and hands it to the outside world. The pipeline
(messaging/pipeline.py) owns everything before (consent, suppression, render) and after (status,
cost, retries, failover); a provider knows only its wire protocol.

Exactly-once hand-off: before the point after which the far side may have the message, a
provider calls `message.commit_point()`, which durably records that the hand-off began. If the
process dies after that, recovery never sends the message again (unless the provider declares
`dedupes`: it passes our idempotency key on, so the far side drops a repeat). SMTP calls it just
before the final "." of DATA; an HTTP provider just before the request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from shopkeeper.consent.models import CHANNELS
from shopkeeper.errors import Invalid

__all__ = ["CHANNELS", "OutboundMessage", "Provider", "ProviderError", "ProviderRegistry", "ProviderResult"]


def _no_commit_point() -> None:
    return None


@dataclass(slots=True)
class OutboundMessage:
    send_id: str
    workspace_id: str
    customer_id: str
    channel: str
    kind: str  # marketing | transactional
    to: str  # the address on this channel (email, E.164 phone, device subscription, session id)
    content: dict[str, str]  # rendered parts: subject/html/text, text, title/body/url, …
    idempotency_key: str
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    commit_point: Callable[[], None] = _no_commit_point


@dataclass(frozen=True, slots=True)
class ProviderResult:
    provider_message_id: str | None
    status: str = "sent"  # or "delivered" when the provider confirms at once (dev, chat)
    units: int = 1  # what the provider bills by: SMS segments, messages
    cost: float | None = None  # None: priced by the provider row's cost_per_unit
    currency: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """The provider refused or could not be reached. `temporary` errors are retried (and fail
    over to the next provider); permanent ones fail the send at once. `suppress` names a
    suppression reason ("stop", "hard_bounce") when the refusal says the address itself must not
    be used again (an SMS provider's "unsubscribed recipient"): the pipeline then suppresses it."""

    def __init__(self, message: str, *, temporary: bool, code: str | None = None, suppress: str | None = None) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.code = code
        self.suppress = suppress


class Provider(Protocol):
    channel: str
    dedupes: bool

    def send(self, message: OutboundMessage) -> ProviderResult: ...

    def close(self) -> None: ...


ProviderFactory = Callable[[Mapping[str, Any]], Provider]


class ProviderRegistry:
    """name → factory. A new provider is one module that calls `register` at import."""

    _factories: ClassVar[dict[tuple[str, str], ProviderFactory]] = {}
    # The provider a channel uses when a workspace configured none: `dev`, unless a real one
    # needs no account (a webhook goes to the endpoint the send names).
    _defaults: ClassVar[dict[str, str]] = {}

    @classmethod
    def register(cls, channel: str, type_: str, factory: ProviderFactory, *, default: bool = False) -> None:
        cls._factories[(channel, type_)] = factory
        if default:
            cls._defaults[channel] = type_

    @classmethod
    def default_type(cls, channel: str) -> str:
        return cls._defaults.get(channel, "dev")

    @classmethod
    def types(cls, channel: str) -> list[str]:
        return sorted(t for c, t in cls._factories if c == channel)

    @classmethod
    def create(cls, channel: str, type_: str, settings: Mapping[str, Any]) -> Provider:
        factory = cls._factories.get((channel, type_))
        if factory is None:
            known = ", ".join(cls.types(channel)) or "none"
            raise Invalid(f"type: no {channel} provider {type_!r}; known: {known}", field="type")
        return factory(settings)
