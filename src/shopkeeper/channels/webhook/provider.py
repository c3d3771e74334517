"""The `webhook` provider: POSTs a send's rendered `body` to its endpoint, signed.

The default provider of the `webhook` channel (no account to configure: the send names its
endpoint, whose URL and secret `hooks.py` hands over in the message metadata). One httpx client
per provider keeps connections open between deliveries.

What the answer means: 2xx delivered; 410 Gone disables the endpoint (code `gone`); 408, 429, 5xx,
timeouts and connection failures are temporary (the pipeline retries with backoff, with the same
`Shopkeeper-Id`, so a receiver drops repeats: hence `dedupes`); any other answer, a redirect
included, is permanent; an address the SSRF guard refuses is permanent too (`blocked_address`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from shopkeeper import __version__, clock
from shopkeeper.channels.base import OutboundMessage, ProviderError, ProviderRegistry, ProviderResult
from shopkeeper.channels.webhook.guard import BlockedAddress, GuardedTransport, deadline
from shopkeeper.channels.webhook.signature import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from shopkeeper.errors import Invalid

MAX_TIMEOUT = 60.0
REPLY_BYTES = 2048  # what is kept of an answer for the send's history
TEMPORARY_STATUSES = frozenset({408, 429})


def _allow_private_default() -> bool:
    from shopkeeper.config import get_settings

    return get_settings().webhook_allow_private


class WebhookProvider:
    channel = "webhook"
    dedupes = True  # the Shopkeeper-Id header is the same on every attempt: receivers drop repeats

    def __init__(self, settings: Mapping[str, Any], *, allow_private: bool | None = None) -> None:
        try:
            self.timeout = float(settings.get("timeout", 10))
        except (TypeError, ValueError):
            raise Invalid("settings.timeout: seconds, a number", field="settings.timeout") from None
        if not 0 < self.timeout <= MAX_TIMEOUT:
            raise Invalid(f"settings.timeout: between 0 and {MAX_TIMEOUT:.0f} seconds", field="settings.timeout")
        # The operator's setting, never a workspace's: a workspace admin must not be able to aim
        # the server at its own network.
        self.allow_private = _allow_private_default() if allow_private is None else allow_private
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            limits = httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30)
            self._client = httpx.Client(
                transport=GuardedTransport(allow_private=self.allow_private, limits=limits),
                timeout=httpx.Timeout(self.timeout, connect=min(5.0, self.timeout)),
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": f"Shopkeeper-Webhooks/{__version__}"},
            )
        return self._client

    def send(self, message: OutboundMessage) -> ProviderResult:
        target = message.metadata.get("webhook")
        if not isinstance(target, Mapping) or not target.get("url") or not target.get("secret"):
            raise ProviderError("no webhook endpoint for this send", temporary=False, code="no_endpoint")
        url, secret = str(target["url"]), str(target["secret"])
        body = message.content.get("body", "").encode()
        timestamp = int(clock.now().timestamp())
        headers = {
            "Content-Type": _content_type(body),
            ID_HEADER: message.send_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        if target.get("event_type"):
            headers[EVENT_HEADER] = str(target["event_type"])
        client = self._http()
        message.commit_point()  # from here the receiver may have it (a repeat is dropped by its id)
        try:
            # `timeout` limits the whole exchange, not each read: a receiver dripping its answer
            # byte by byte must not hold the worker (and everyone's messages behind it).
            with deadline(self.timeout), client.stream("POST", url, content=body, headers=headers) as response:
                reply = _read_some(response)
        except BlockedAddress as exc:
            raise ProviderError(str(exc), temporary=False, code="blocked_address") from None
        except httpx.TimeoutException:
            raise ProviderError(
                f"no answer from {url} within {self.timeout:.0f} s", temporary=True, code="timeout"
            ) from None
        except httpx.InvalidURL as exc:
            raise ProviderError(f"the endpoint URL is not valid: {exc}", temporary=False, code="invalid_url") from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"cannot reach {url}: {exc}", temporary=True, code="unreachable") from None
        status = response.status_code
        said = f"{status} {response.reason_phrase}" + (f": {reply}" if reply else "")
        if 200 <= status < 300:
            return ProviderResult(message.send_id, status="delivered", data={"status_code": status, "reply": reply})
        if status == 410:
            raise ProviderError(f"{said} (the endpoint is disabled)", temporary=False, code="gone")
        if status in TEMPORARY_STATUSES or status >= 500:
            raise ProviderError(said, temporary=True, code=str(status))
        if 300 <= status < 400:
            said += f" (redirects are not followed; update the endpoint's URL to {response.headers.get('location')})"
        raise ProviderError(said, temporary=False, code=str(status))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _content_type(body: bytes) -> str:
    if body.lstrip()[:1] in (b"{", b"["):
        try:
            orjson.loads(body)
            return "application/json"
        except orjson.JSONDecodeError:
            pass
    return "text/plain; charset=utf-8"


def _read_some(response: httpx.Response) -> str:
    """The start of the answer (a receiver's error text helps whoever reads the history); the
    rest is not read, so a huge answer costs nothing."""
    kept = b""
    for chunk in response.iter_bytes():
        kept += chunk
        if len(kept) >= REPLY_BYTES:
            break
    return kept[:REPLY_BYTES].decode(errors="replace").strip()[:500]


ProviderRegistry.register("webhook", "webhook", WebhookProvider, default=True)
