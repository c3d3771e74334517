"""Fake messaging-app APIs on loopback: Meta's Graph API (WhatsApp Cloud API and Messenger Send
API shapes, bearer token checked) and Telegram's Bot API (token in the path), with refusals on
demand; and the signed webhook requests each app sends, built the way the apps document them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.channels.loopback import Answer, LoopbackServer, Request

VERSION = "v21.0"


@dataclass
class FakeGraph(LoopbackServer):
    token: str = field(default_factory=lambda: "EAAG" + secrets.token_hex(20))
    app_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    verify_token: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    phone_number_id: str = "106540352242922"
    page_id: str = "104958162837"
    refusals: deque[tuple[int, int, str]] = field(default_factory=deque)
    before_answer: Callable[[dict[str, Any], str], None] | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)  # accepted payloads, with "_id"

    def whatsapp_settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "access_token": self.token,
            "phone_number_id": self.phone_number_id,
            "app_secret": self.app_secret,
            "verify_token": self.verify_token,
            "base_url": self.url,
            "version": VERSION,
            **extra,
        }

    def messenger_settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "page_access_token": self.token,
            "page_id": self.page_id,
            "app_secret": self.app_secret,
            "verify_token": self.verify_token,
            "base_url": self.url,
            "version": VERSION,
            **extra,
        }

    def refuse(self, status: int, code: int, message: str = "refused", *, times: int = 1) -> None:
        self.refusals.extend([(status, code, message)] * times)

    def answer(self, request: Request) -> Answer:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._error(401, 190, "Invalid OAuth access token.")
        if self.refusals:
            return self._error(*self.refusals.popleft())
        payload = request.json()
        if request.path == f"/{VERSION}/{self.phone_number_id}/messages":
            if payload.get("messaging_product") != "whatsapp" or payload.get("type") != "text":
                return self._error(400, 100, "Invalid parameter")
            if not str(payload.get("to", "")).isdigit() or not payload.get("text", {}).get("body"):
                return self._error(400, 100, "Invalid parameter")
            message_id = "wamid." + uuid.uuid4().hex
            answer = {
                "messaging_product": "whatsapp",
                "contacts": [{"input": payload["to"], "wa_id": payload["to"]}],
                "messages": [{"id": message_id}],
            }
        elif request.path == f"/{VERSION}/me/messages":
            if not payload.get("recipient", {}).get("id") or not payload.get("message", {}).get("text"):
                return self._error(400, 100, "Invalid parameter")
            message_id = "m_" + uuid.uuid4().hex
            answer = {"recipient_id": payload["recipient"]["id"], "message_id": message_id}
        else:
            return self._error(404, 803, "Unknown path components")
        self.sent.append({**payload, "_id": message_id})
        if self.before_answer is not None:
            self.before_answer(payload, message_id)
        return Answer.json(200, answer)

    def _error(self, status: int, code: int, message: str) -> Answer:
        return Answer.json(
            status, {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1b2"}}
        )

    # -- what Meta posts to our webhooks -------------------------------------------------------
    def signed(self, document: dict[str, Any], *, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        body = orjson.dumps(document)
        return body, self.signature(body, secret=secret)

    def signature(self, body: bytes, *, secret: str | None = None) -> dict[str, str]:
        digest = hmac.new((secret or self.app_secret).encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}

    def whatsapp_change(self, value: dict[str, Any], *, phone_number_id: str | None = None) -> dict[str, Any]:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "15550001234",
                "phone_number_id": phone_number_id or self.phone_number_id,
            },
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
        }

    def whatsapp_message(
        self, wa_id: str, text: str, *, message_id: str | None = None, name: str = "Kerry Fisher", **kw: Any
    ) -> dict[str, Any]:
        message = {
            "from": wa_id,
            "id": message_id or "wamid." + uuid.uuid4().hex,
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": text},
        }
        contacts = [{"profile": {"name": name}, "wa_id": wa_id}]
        return self.whatsapp_change({"contacts": contacts, "messages": [message]}, **kw)

    def whatsapp_status(
        self,
        message_id: str,
        status: str,
        recipient: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        ref: str | None = None,
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": message_id,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": recipient,
        }
        if errors:
            entry["errors"] = errors
        if ref:
            entry["biz_opaque_callback_data"] = ref
        return self.whatsapp_change({"statuses": [entry]})

    def messenger(self, *events: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "page",
            "entry": [{"id": self.page_id, "time": int(time.time() * 1000), "messaging": list(events)}],
        }

    def messenger_event(self, psid: str, **what: Any) -> dict[str, Any]:
        return {
            "sender": {"id": psid},
            "recipient": {"id": self.page_id},
            "timestamp": int(time.time() * 1000),
            **what,
        }


_message_ids = itertools.count(100)


@dataclass
class FakeTelegram(LoopbackServer):
    token: str = field(default_factory=lambda: f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(26)}")
    secret_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    refusals: deque[tuple[int, str]] = field(default_factory=deque)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"bot_token": self.token, "secret_token": self.secret_token, "base_url": self.url, **extra}

    def refuse(self, code: int, description: str, *, times: int = 1) -> None:
        self.refusals.extend([(code, description)] * times)

    def answer(self, request: Request) -> Answer:
        if request.path != f"/bot{self.token}/sendMessage":
            return Answer.json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        if self.refusals:
            code, description = self.refusals.popleft()
            body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
            if code == 429:
                body["parameters"] = {"retry_after": 3}
            return Answer.json(code, body)
        payload = request.json()
        if not isinstance(payload.get("chat_id"), int) or not payload.get("text"):
            return Answer.json(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
        message_id = next(_message_ids)
        self.sent.append({**payload, "_id": message_id})
        chat = {"id": payload["chat_id"], "type": "private"}
        return Answer.json(
            200,
            {
                "ok": True,
                "result": {"message_id": message_id, "chat": chat, "date": int(time.time()), "text": payload["text"]},
            },
        )

    def update(
        self,
        chat_id: int,
        text: str | None,
        *,
        message_id: int | None = None,
        chat_type: str = "private",
        **sender: Any,
    ) -> tuple[bytes, dict[str, str]]:
        message: dict[str, Any] = {
            "message_id": message_id or next(_message_ids),
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ada", "language_code": "en", **sender},
            "chat": {"id": chat_id, "type": chat_type, "first_name": "Ada"},
            "date": int(time.time()),
        }
        if text is not None:
            message["text"] = text
        return self.signed({"update_id": next(_message_ids), "message": message})

    def signed(self, document: dict[str, Any], *, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        return orjson.dumps(document), {
            "X-Telegram-Bot-Api-Secret-Token": secret or self.secret_token,
            "Content-Type": "application/json",
        }
