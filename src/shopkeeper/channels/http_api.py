"""Pieces every HTTP-API provider shares: checked settings, and one request whose failures are
sorted by whether the far side can have the message (the exactly-once rule of channels/base.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from shopkeeper.channels.base import ProviderError
from shopkeeper.errors import Invalid


def http_url(value: object, field: str) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"{field}: an http(s) URL", field=field)
    return str(value).rstrip("/")


def required(settings: Mapping[str, Any], name: str, what: str) -> str:
    value = settings.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"settings.{name}: required ({what})", field=f"settings.{name}")
    return value.strip()


def seconds(settings: Mapping[str, Any], name: str = "timeout", default: float = 15) -> float:
    value = settings.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
        raise Invalid(f"settings.{name}: seconds, more than 0 and at most 300", field=f"settings.{name}")
    return float(value)


def webhook_base(settings: Mapping[str, Any]) -> str:
    """Where the provider reaches this server: the provider's own `webhook_base_url`, else the
    server's public address (`Settings.public_url`)."""
    configured = settings.get("webhook_base_url")
    if configured:
        return http_url(configured, "settings.webhook_base_url")
    from shopkeeper.config import get_settings

    return get_settings().public_url.rstrip("/")


def post(client: httpx.Client, url: str, what: str, **kwargs: Any) -> httpx.Response:
    """One API request. `what` names the server in errors (never the URL: some carry a token)."""
    try:
        return client.post(url, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError, httpx.WriteTimeout) as exc:
        # Nothing complete reached the server: safe to try again or elsewhere.
        raise ProviderError(f"cannot reach {what}: {type(exc).__name__}", temporary=True) from None
    except httpx.TransportError as exc:
        # The request went out and no answer came: the message may exist, so never send it again.
        raise ProviderError(
            f"no answer from {what}: {type(exc).__name__}", temporary=False, code="unconfirmed"
        ) from None


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
