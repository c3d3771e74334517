"""What every inbound provider webhook needs: the provider row its URL names, the body parsed
without trusting it, signatures compared in constant time, and the public address the provider
signed. These routes are public: the signature is their only credential, so it is checked before
anything is read from the payload, and a bad one is a 403 whatever else is wrong."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.errors import Forbidden, Invalid, NotFound, ShopkeeperError
from shopkeeper.messaging.models import ChannelProvider

MAX_FIELDS = 500


class Unavailable(ShopkeeperError):
    """Storing failed on our side: the provider should deliver the webhook again later."""

    code = "unavailable"
    status = 503


def provider_row(session: Session, provider_id: str, channel: str, types: tuple[str, ...]) -> ChannelProvider:
    """The provider account a webhook URL names. Looked up by id alone (the caller has no API key;
    the id only says whose secret checks the signature). A disabled provider still receives:
    messages customers send do not stop arriving because we stopped sending through it."""
    row = session.scalar(
        select(ChannelProvider).where(
            ChannelProvider.id == provider_id, ChannelProvider.channel == channel, ChannelProvider.type.in_(types)
        )
    )
    if row is None:
        raise NotFound(f"no {channel} provider {provider_id!r}", field="provider_id")
    return row


def secret(settings: Mapping[str, Any], name: str) -> str:
    """A configured secret, or a 403: without it no request can be verified, so none is trusted."""
    value = settings.get(name)
    if not isinstance(value, str) or not value:
        raise Forbidden(f"the provider has no {name}, so no webhook can be verified", field=name)
    return value


def parse_form(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Invalid("body: not a form (application/x-www-form-urlencoded)", field="body") from None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise Invalid("body: a field contains a NUL character", field="body")
    return pairs


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Invalid("body: malformed JSON", field="body") from None
    if not isinstance(document, dict):
        raise Invalid("body: a JSON object", field="body")
    return document


@dataclass(frozen=True, slots=True)
class Arrival:
    """Where a webhook request arrived, to rebuild the URL its sender signed."""

    path: str
    query: str
    url: str
    public_url: str  # Settings.public_url of this server

    @classmethod
    def of(cls, request: Request, public_url: str) -> Arrival:
        return cls(request.url.path, request.url.query, str(request.url), public_url)

    def urls(self, settings: Mapping[str, Any]) -> list[str]:
        """The URLs the provider may have signed: this path under the public address (the
        provider's own `webhook_base_url` if it has one), and the URL the request arrived on
        (the same when no proxy stands between)."""
        base = settings.get("webhook_base_url")
        base = base if isinstance(base, str) and base else self.public_url
        own = f"{base.rstrip('/')}{self.path}" + (f"?{self.query}" if self.query else "")
        return [own] if own == self.url else [own, self.url]


def hub_signature_ok(app_secret: str, body: bytes, header: str | None) -> bool:
    """Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body under the app secret>`."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


def same_secret(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def text_of(value: object, limit: int = 100_000) -> str | None:
    """A string from untrusted JSON: anything else is None; NUL (which PostgreSQL cannot store)
    is dropped and an absurd length cut."""
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "")[:limit]


def items(value: object) -> list[dict[str, Any]]:
    """The objects of a JSON list (anything else in it is skipped)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid("body: a list was expected", field="body")
    return [item for item in value if isinstance(item, dict)]
