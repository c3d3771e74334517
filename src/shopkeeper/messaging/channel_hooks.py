"""Steps a channel adds around the pipeline's hand-off, for providers that need more than the
rendered message and the address.

A provider only sees the `OutboundMessage`; it has no database. The webhook channel needs the
endpoint's URL and signing secret, read in the transaction that prepares the send (so a disabled
or deleted endpoint is never called), and must disable an endpoint that answered 410 Gone, in the
transaction that records the failure. A channel registers one `ChannelHooks` object for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.orm import Session

from shopkeeper.messaging.models import Send


class ChannelHooks(Protocol):
    def prepare(self, session: Session, send: Send) -> Mapping[str, Any]:
        """Extra `metadata` for the provider. Raise a ShopkeeperError to fail the send (its
        message becomes the send's reason)."""
        ...

    def failed(self, session: Session, send: Send, code: str | None) -> None:
        """A provider refused the send for good with this `ProviderError.code`."""
        ...


_hooks: dict[str, ChannelHooks] = {}


def register(channel: str, hooks: ChannelHooks) -> None:
    _hooks[channel] = hooks


def prepare(session: Session, send: Send) -> dict[str, Any]:
    hooks = _hooks.get(send.channel)
    return dict(hooks.prepare(session, send)) if hooks is not None else {}


def failed(session: Session, send: Send, code: str | None) -> None:
    hooks = _hooks.get(send.channel)
    if hooks is not None:
        hooks.failed(session, send, code)
