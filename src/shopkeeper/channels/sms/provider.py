"""The `twilio` SMS provider: a Twilio-shaped REST API (any compatible gateway, or a fake in tests).

POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json with HTTP basic auth, the form
fields To, From (or MessagingServiceSid), Body and StatusCallback. The status callback URL names
the provider row and the send, so a delivery report that arrives before the worker has recorded
the provider's message id still finds its send (the URL is covered by Twilio's signature).

Errors: 429, 5xx and unreachable servers are temporary (retry, fail over); a refused account
(401/403) is temporary too, since the message is fine and another provider may take it; any other
4xx is permanent. Refusals that condemn the number itself also suppress it: 21610 (the recipient
replied STOP to the carrier) with reason `stop`, 21211/21614 (not a valid mobile number) with
`hard_bounce`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from shopkeeper.channels.base import OutboundMessage, ProviderError, ProviderRegistry, ProviderResult
from shopkeeper.channels.http_api import http_url, json_object, post, required, seconds, webhook_base
from shopkeeper.channels.sms_segments import count_segments
from shopkeeper.errors import Invalid

DEFAULT_BASE_URL = "https://api.twilio.com"
# Twilio error code → the suppression reason it implies for the recipient's number.
SUPPRESSING_ERRORS = {"21610": "stop", "21211": "hard_bounce", "21614": "hard_bounce"}
# A Twilio message status → ours (SPEC §5). undelivered/failed depend on the error code.
STATUS_MAP = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "opened",
    "canceled": "failed",
}
FAILED_STATUSES = ("undelivered", "failed")
# Carrier reports that the number itself is wrong: a bounce (and a suppression), not a failure.
BOUNCE_ERRORS = {
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "21211": "invalid 'To' number",
    "21614": "not a mobile number",
    "21610": "recipient unsubscribed (STOP)",
}


class TwilioProvider:
    channel = "sms"
    dedupes = False  # the Messages API takes no idempotency key

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.account_sid = required(settings, "account_sid", "the account SID")
        self.auth_token = required(settings, "auth_token", "the account's auth token")
        self.sender = settings.get("from")
        self.messaging_service_sid = settings.get("messaging_service_sid")
        if not (isinstance(self.sender, str) and self.sender) and not (
            isinstance(self.messaging_service_sid, str) and self.messaging_service_sid
        ):
            raise Invalid("settings.from: give a sender number or a messaging_service_sid", field="settings.from")
        self.base_url = http_url(settings.get("base_url", DEFAULT_BASE_URL), "settings.base_url")
        self.timeout = seconds(settings)
        self.provider_id = settings.get("provider_id")
        self.callbacks = bool(settings.get("status_callback", True))
        self.webhook_base = webhook_base(settings)
        self.url = f"{self.base_url}/2010-04-01/Accounts/{quote(self.account_sid, safe='')}/Messages.json"
        self._client: httpx.Client | None = None

    def status_callback(self, send_id: str) -> str | None:
        if not self.callbacks or not isinstance(self.provider_id, str):
            return None
        return f"{self.webhook_base}/webhooks/sms/{self.provider_id}/status?send={quote(send_id, safe='')}"

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(auth=(self.account_sid, self.auth_token), timeout=self.timeout)
        return self._client

    def send(self, message: OutboundMessage) -> ProviderResult:
        text = message.content.get("text", "")
        form = {"To": message.to, "Body": text}
        if isinstance(self.messaging_service_sid, str) and self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = str(self.sender)
        callback = self.status_callback(message.send_id)
        if callback:
            form["StatusCallback"] = callback
        message.commit_point()  # from here Twilio may have it
        response = post(self._http(), self.url, self.base_url, data=form)
        return self._result(response, text)

    def _result(self, response: httpx.Response, text: str) -> ProviderResult:
        body = json_object(response)
        if response.status_code >= 400:
            raise _error(response.status_code, body)
        sid = body.get("sid")
        if not isinstance(sid, str) or not sid:
            raise ProviderError(
                f"answer {response.status_code} without a message sid", temporary=False, code="unconfirmed"
            )
        counted = count_segments(text)
        units = _int(body.get("num_segments")) or counted.segments or 1
        price, unit = _price(body.get("price")), body.get("price_unit")
        return ProviderResult(
            sid,
            status="sent",
            units=units,
            cost=price,
            currency=unit.upper() if price is not None and isinstance(unit, str) and len(unit) == 3 else None,
            data={
                "provider_status": body.get("status"),
                "encoding": counted.encoding,
                "segments_counted": counted.segments,
            },
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _error(status: int, body: Mapping[str, Any]) -> ProviderError:
    code = str(body.get("code")) if body.get("code") is not None else None
    detail = body.get("message") if isinstance(body.get("message"), str) else ""
    what = f"Twilio answered {status}" + (f", error {code}" if code else "") + (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        return ProviderError(what, temporary=True, code=code)
    if status in (401, 403):
        return ProviderError(what, temporary=True, code=code or "auth")
    return ProviderError(what, temporary=False, code=code, suppress=SUPPRESSING_ERRORS.get(code or ""))


def _int(value: object) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _price(value: object) -> float | None:
    """Twilio reports what it charged as a negative string ("-0.00750"), often only later."""
    if value is None:
        return None
    try:
        price = abs(float(str(value)))
    except ValueError:
        return None
    return round(price, 6) if math.isfinite(price) else None


def map_status(status: str, error_code: str | None) -> str | None:
    """Our status for a Twilio status callback, or None for one we do not track."""
    if status in FAILED_STATUSES:
        return "bounced" if error_code in BOUNCE_ERRORS else "failed"
    return STATUS_MAP.get(status)


ProviderRegistry.register("sms", "twilio", TwilioProvider)
