"""The push channel's step after a refusal: a subscription the push service called gone (404/410)
is deleted, so no later send picks it (the pipeline suppresses the address as well)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from shopkeeper.channels.push.subscriptions import decode, forget
from shopkeeper.messaging import channel_hooks
from shopkeeper.messaging.models import Send


class PushHooks:
    def prepare(self, session: Session, send: Send) -> Mapping[str, Any]:
        return {}

    def failed(self, session: Session, send: Send, code: str | None) -> None:
        if code == "gone" and send.to_address and decode(send.to_address) is not None:
            forget(session, send.workspace_id, send.to_address)


channel_hooks.register("push", PushHooks())
