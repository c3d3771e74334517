"""Telegram through the Bot API (`bot_api`): a text to the chat a customer opened with the bot,
and the bot's webhook updates parsed.

Outbound: POST {base_url}/bot{token}/sendMessage with `{"chat_id", "text"}`; the answer is
`{"ok": true, "result": {"message_id", "chat": {"id"}}}`. A message id is unique only within its
chat, so ours is "{chat_id}:{message_id}". The Bot API reports no deliveries or reads: a send
stays `sent`. A customer who blocked the bot gets 403, which fails the send (code `blocked`).

Inbound: Telegram calls the webhook with the secret given to setWebhook in the
X-Telegram-Bot-Api-Secret-Token header; `update.message` from a private chat is a message from
a customer (groups and channels are no customers and are ignored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from shopkeeper.channels.base import OutboundMessage, ProviderError, ProviderRegistry, ProviderResult
from shopkeeper.channels.http_api import http_url, json_object, post, required, seconds
from shopkeeper.channels.social.parsed import Incoming, from_epoch
from shopkeeper.channels.webhook_http import text_of
from shopkeeper.errors import Invalid

DEFAULT_BASE_URL = "https://api.telegram.org"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,100}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts as secret_token
PARSE_MODES = ("MarkdownV2", "HTML", "Markdown")


class TelegramProvider:
    channel = "telegram"
    dedupes = False

    def __init__(self, settings: Mapping[str, Any]) -> None:
        token = required(settings, "bot_token", "the token BotFather gave")
        if not _TOKEN.match(token):
            raise Invalid("settings.bot_token: a bot token such as 123456:ABC-DEF…", field="settings.bot_token")
        secret = settings.get("secret_token")
        if secret is not None and (not isinstance(secret, str) or not _SECRET.match(secret)):
            raise Invalid(
                "settings.secret_token: 1-256 characters A-Z, a-z, 0-9, _ and -", field="settings.secret_token"
            )
        parse_mode = settings.get("parse_mode")
        if parse_mode is not None and parse_mode not in PARSE_MODES:
            raise Invalid(f"settings.parse_mode: one of {', '.join(PARSE_MODES)}", field="settings.parse_mode")
        self.parse_mode = parse_mode
        self.base_url = http_url(settings.get("base_url", DEFAULT_BASE_URL), "settings.base_url")
        self.url = f"{self.base_url}/bot{token}/sendMessage"
        self.timeout = seconds(settings)
        self._client: httpx.Client | None = None

    def send(self, message: OutboundMessage) -> ProviderResult:
        chat: int | str = int(message.to) if re.fullmatch(r"-?\d{1,20}", message.to) else message.to
        payload: dict[str, Any] = {"chat_id": chat, "text": message.content.get("text", "")}
        if self.parse_mode:
            payload["parse_mode"] = self.parse_mode
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        message.commit_point()
        response = post(self._client, self.url, self.base_url, json=payload)
        body = json_object(response)
        if response.status_code >= 400 or body.get("ok") is not True:
            raise _error(response.status_code, body)
        result = body.get("result") if isinstance(body.get("result"), dict) else {}
        assert isinstance(result, dict)
        message_id = result.get("message_id")
        if not isinstance(message_id, int):
            raise ProviderError("the Bot API answered without a message id", temporary=False, code="unconfirmed")
        return ProviderResult(f"{message.to}:{message_id}", status="sent")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _error(status: int, body: Mapping[str, Any]) -> ProviderError:
    given = body.get("error_code")
    code = given if isinstance(given, int) else status
    description = text_of(body.get("description"), 300) or ""
    what = f"Telegram answered {code}" + (f": {description}" if description else "")
    if code == 429 or code >= 500:
        return ProviderError(what, temporary=True, code=str(code))
    if code == 401:
        return ProviderError(what, temporary=True, code="auth")  # the bot's token: another bot may send
    if code == 403:
        return ProviderError(what, temporary=False, code="blocked")
    return ProviderError(what, temporary=False, code=str(code))


def parse(update: Mapping[str, Any]) -> list[Incoming]:
    message = update.get("message")
    if not isinstance(message, dict):
        if "update_id" not in update:
            raise Invalid("update_id: required (a Telegram update)", field="update_id")
        return []  # edits, channel posts, callback queries: nothing a customer said to us
    chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
    assert isinstance(chat, dict)
    chat_id, message_id = chat.get("id"), message.get("message_id")
    if not isinstance(chat_id, int) or not isinstance(message_id, int):
        raise Invalid("message: chat.id and message_id are required", field="message")
    if chat.get("type") != "private":
        return []
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    assert isinstance(sender, dict)
    traits = {
        name: value
        for name, key in (("first_name", "first_name"), ("last_name", "last_name"), ("telegram_username", "username"))
        if (value := text_of(sender.get(key), 200))
    }
    data: dict[str, Any] = {}
    at = from_epoch(message.get("date"))
    if at is not None:
        data["sent_at"] = at.isoformat()
    text = text_of(message.get("text"))
    if text is None:
        text = text_of(message.get("caption"))
        kinds = [k for k in ("photo", "document", "voice", "video", "sticker", "location", "contact") if k in message]
        if kinds:
            data["type"] = kinds[0]
    if text is not None and text.startswith("/"):
        data["command"] = text.split()[0][1:].split("@")[0][:64] if text.split() else ""
    return [Incoming(str(chat_id), f"{chat_id}:{message_id}", text, data, traits)]


ProviderRegistry.register("telegram", "bot_api", TelegramProvider)
