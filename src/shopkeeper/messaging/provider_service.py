"""Provider accounts per workspace and channel: validated by building the provider once, secrets
kept out of every answer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from shopkeeper.channels import installed  # noqa: F401 - providers register themselves
from shopkeeper.channels.base import ProviderRegistry
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Conflict, Invalid
from shopkeeper.ids import new_id
from shopkeeper.messaging.models import ChannelProvider

SECRET_WORDS = ("password", "secret", "token", "private_key", "api_key", "auth")
HIDDEN = "********"


def _is_secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


def redacted(settings: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if isinstance(value, Mapping):
            out[name] = redacted(value)
        else:
            out[name] = HIDDEN if _is_secret(name) and value else value
    return out


def _keep_secrets(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """A redacted value sent back unchanged (a form round trip) keeps the stored secret."""
    out: dict[str, Any] = {}
    for name, value in new.items():
        if isinstance(value, Mapping) and isinstance(old.get(name), Mapping):
            out[name] = _keep_secrets(value, old[name])
        elif value == HIDDEN and name in old:
            out[name] = old[name]
        else:
            out[name] = value
    return out


def _validate(channel: str, type_: str, settings: Mapping[str, Any]) -> None:
    try:
        ProviderRegistry.create(channel, type_, settings).close()
    except (TypeError, ValueError) as exc:  # a provider reading a setting of the wrong type
        raise Invalid(f"settings: {exc}", field="settings") from None


def create_provider(session: Session, workspace_id: str, values: Mapping[str, Any], now: datetime) -> ChannelProvider:
    _validate(values["channel"], values["type"], values.get("settings") or {})
    taken = session.scalar(
        scoped(ChannelProvider, workspace_id).where(
            ChannelProvider.channel == values["channel"], ChannelProvider.name == values["name"]
        )
    )
    if taken is not None:
        raise Conflict(f"name: a {values['channel']} provider {values['name']!r} exists already", field="name")
    row = ChannelProvider(id=new_id("prv"), workspace_id=workspace_id, created_at=now, updated_at=now, **values)
    session.add(row)
    session.flush()
    return row


def update_provider(
    session: Session, workspace_id: str, provider_id: str, changes: Mapping[str, Any], now: datetime
) -> ChannelProvider:
    row = get_scoped(session, ChannelProvider, workspace_id, provider_id, "provider")
    if changes.get("settings") is not None:
        settings = _keep_secrets(changes["settings"], row.settings)
        _validate(row.channel, row.type, settings)
        row.settings = settings
    for name in ("priority", "rate_per_second", "cost_per_unit", "currency", "enabled"):
        if name in changes and (changes[name] is not None or name in ("rate_per_second", "cost_per_unit")):
            setattr(row, name, changes[name])
    row.updated_at = now
    session.flush()
    return row
