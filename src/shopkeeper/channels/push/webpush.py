"""The `webpush` provider: one encrypted message (RFC 8291, aes128gcm) per subscription, posted to
the push service with a VAPID authorization (RFC 8292) and a TTL.

Settings: `vapid_private_key` (from `shopkeeper push vapid-keys`), `vapid_subject` (a mailto: or
https: contact the push service can reach), optionally `ttl` (seconds the push service keeps
the message for an offline browser; default one day), `urgency` and `timeout`.

Answers: 201 (or any 2xx) is sent; 404 and 410 mean the subscription is gone for good: the send
fails, the address is suppressed and the subscription deleted (push/hooks.py); 429 and 5xx are
temporary (retried with backoff); other 4xx are permanent. Endpoints are browser-supplied, so
requests pass the SSRF guard of outbound webhooks: public addresses only, unless the operator
sets SHOPKEEPER_PUSH_ALLOW_PRIVATE=true.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from pywebpush import WebPusher

from shopkeeper import clock
from shopkeeper.channels.base import OutboundMessage, ProviderError, ProviderRegistry, ProviderResult
from shopkeeper.channels.push.subscriptions import decode
from shopkeeper.channels.push.vapid import load, public_key_of
from shopkeeper.channels.webhook.guard import BlockedAddress, GuardedTransport, deadline
from shopkeeper.errors import Invalid

URGENCIES = ("very-low", "low", "normal", "high")
MAX_TTL = 28 * 24 * 3600
# A push message record is at most 4096 bytes: 86 of header, 16 of tag, 1 of padding delimiter.
MAX_PAYLOAD = 4096 - 86 - 16 - 1
JWT_LIFETIME = 12 * 3600  # RFC 8292: at most 24 hours


def _subject(value: object) -> str:
    if not isinstance(value, str) or not value.startswith(("mailto:", "https://")) or len(value) < 10:
        raise Invalid(
            "settings.vapid_subject: a contact for the push service, mailto:ops@shop.example or https://shop.example",
            field="settings.vapid_subject",
        )
    return value


class WebPushProvider:
    channel = "push"
    dedupes = False

    def __init__(self, settings: Mapping[str, Any], *, allow_private: bool | None = None) -> None:
        self.vapid = load(settings.get("vapid_private_key"))
        self.public_key = public_key_of(self.vapid.private_key)
        self.subject = _subject(settings.get("vapid_subject"))
        ttl = settings.get("ttl", 86400)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_TTL:
            raise Invalid(f"settings.ttl: whole seconds from 0 to {MAX_TTL}", field="settings.ttl")
        self.ttl = ttl
        self.urgency = settings.get("urgency", "normal")
        if self.urgency not in URGENCIES:
            raise Invalid(f"settings.urgency: one of {', '.join(URGENCIES)}", field="settings.urgency")
        timeout = settings.get("timeout", 10)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 120:
            raise Invalid("settings.timeout: seconds, above 0 and at most 120", field="settings.timeout")
        if allow_private is None:
            from shopkeeper.config import get_settings

            allow_private = get_settings().push_allow_private
        self.allow_private = allow_private
        self._client: httpx.Client | None = None
        self._timeout = float(timeout)

    def _http(self) -> httpx.Client:
        if self._client is None:
            limits = httpx.Limits(max_connections=20, max_keepalive_connections=10)
            self._client = httpx.Client(
                transport=GuardedTransport(allow_private=self.allow_private, limits=limits),
                timeout=self._timeout,
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    def payload(self, message: OutboundMessage) -> bytes:
        """What the service worker receives (as `event.data.json()`)."""
        body: dict[str, Any] = {
            "title": message.content.get("title", ""),
            "body": message.content.get("body", ""),
            "send_id": message.send_id,
        }
        if message.content.get("url"):
            body["url"] = message.content["url"]
        return orjson.dumps(body)

    def vapid_headers(self, endpoint: str) -> dict[str, str]:
        parts = urlsplit(endpoint)
        claims = {
            "sub": self.subject,
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(clock.now().timestamp()) + JWT_LIFETIME,
        }
        headers: dict[str, str] = self.vapid.sign(claims)
        return headers

    def send(self, message: OutboundMessage) -> ProviderResult:
        subscription = decode(message.to)
        if subscription is None:
            raise ProviderError("the address is not a web push subscription", temporary=False, code="invalid_address")
        data = self.payload(message)
        if len(data) > MAX_PAYLOAD:
            raise ProviderError(f"payload of {len(data)} bytes; web push allows {MAX_PAYLOAD}", temporary=False)
        try:
            encrypted = WebPusher(subscription.info()).encode(data, "aes128gcm")["body"]
        except Exception as exc:  # noqa: BLE001 - pywebpush and cryptography raise several types
            raise ProviderError(
                f"cannot encrypt for this subscription: {exc}", temporary=False, code="invalid_address"
            ) from None
        headers = {
            **self.vapid_headers(subscription.endpoint),
            "TTL": str(self.ttl),
            "Urgency": str(self.urgency),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        message.commit_point()
        try:
            with deadline(self._timeout):  # the whole exchange, however slowly the far side drips
                response = self._http().post(subscription.endpoint, content=encrypted, headers=headers)
        except BlockedAddress as exc:
            raise ProviderError(str(exc), temporary=False, code="blocked_address") from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing reached the push service
            raise ProviderError(f"cannot reach the push service: {exc}", temporary=True) from None
        except httpx.TransportError as exc:
            raise ProviderError(
                f"no answer after the message was sent: {exc}", temporary=False, code="unconfirmed"
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            location = response.headers.get("location")
            return ProviderResult(location or f"webpush-{message.send_id}", data={"status": status})
        reason = f"push service answered {status}: {response.text[:200]}"
        if status in (404, 410):
            raise ProviderError(reason, temporary=False, code="gone", suppress="hard_bounce")
        if status == 429 or status >= 500:
            raise ProviderError(reason, temporary=True, code=str(status))
        raise ProviderError(reason, temporary=False, code=str(status))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


ProviderRegistry.register("push", "webpush", WebPushProvider)
