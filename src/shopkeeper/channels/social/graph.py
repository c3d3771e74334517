"""Meta's Graph API as WhatsApp Cloud API and the Messenger Send API use it: a bearer token,
JSON in and out, errors as `{"error": {"code", "message", ...}}`, and inbound webhooks signed
with the app secret (X-Hub-Signature-256) after a GET handshake on the verify token.

Errors: HTTP 429 and 5xx, and the Graph codes that mean "later" (rate limits, temporary outages),
are temporary; an expired or refused token (190) is temporary too, so that another provider can
take the message; anything else is permanent."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from shopkeeper.channels.base import ProviderError
from shopkeeper.channels.http_api import http_url, json_object, post, required, seconds
from shopkeeper.errors import Invalid

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v21.0"
_VERSION = re.compile(r"^v\d{1,3}\.\d{1,3}$")
# Rate limits, throttling and "temporarily unavailable" across Graph, WhatsApp and Messenger.
TEMPORARY_CODES = {1, 2, 4, 17, 32, 341, 613, 1200, 80007, 130429, 131000, 131016, 131048, 131056, 133004}
AUTH_CODES = {190}


class GraphClient:
    """One Graph API account: base URL, version, token, and a connection kept open."""

    def __init__(self, settings: Mapping[str, Any], token_name: str) -> None:
        self.token = required(settings, token_name, "the access token")
        self.base_url = http_url(settings.get("base_url", DEFAULT_BASE_URL), "settings.base_url")
        version = settings.get("version", DEFAULT_VERSION)
        if not isinstance(version, str) or not _VERSION.match(version):
            raise Invalid("settings.version: a Graph API version such as v21.0", field="settings.version")
        self.version = version
        self.timeout = seconds(settings)
        self._client: httpx.Client | None = None

    def url(self, path: str) -> str:
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def post(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        if self._client is None:
            self._client = httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=self.timeout)
        response = post(self._client, self.url(path), self.base_url, json=dict(payload))
        body = json_object(response)
        if response.status_code >= 400 or "error" in body:
            raise graph_error(response.status_code, body)
        return body

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def graph_error(status: int, body: Mapping[str, Any]) -> ProviderError:
    error: Mapping[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    code = error.get("code")
    number = code if isinstance(code, int) else None
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    what = f"Graph API answered {status}" + (f", error {code}" if code is not None else "")
    what += f": {message}" if message else ""
    code_text = str(code) if code is not None else None
    if status == 429 or status >= 500 or number in TEMPORARY_CODES:
        return ProviderError(what, temporary=True, code=code_text)
    if number in AUTH_CODES or status == 401:
        return ProviderError(what, temporary=True, code=code_text or "auth")
    return ProviderError(what, temporary=False, code=code_text)
