"""A fake Twilio on loopback: the Messages REST shape (basic auth checked, sid/status/num_segments
answered, refusals with Twilio error codes on demand), and the signed webhooks Twilio sends back
(status callbacks, inbound texts). Segments and signatures are computed here independently of the
code under test, the way Twilio documents them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from tests.channels.loopback import Answer, LoopbackServer, Request

_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_ESCAPED = set("^{}\\[~]|€\f")


def twilio_segments(text: str) -> int:
    """Twilio's published rule: GSM-7 160/153 septets, else UCS-2 70/67 code units."""
    if all(c in _GSM or c in _GSM_ESCAPED for c in text):
        septets = len(text) + sum(c in _GSM_ESCAPED for c in text)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def twilio_signature(auth_token: str, url: str, form: dict[str, str]) -> str:
    data = url + "".join(f"{key}{form[key]}" for key in sorted(form))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


@dataclass
class FakeTwilio(LoopbackServer):
    account_sid: str = field(default_factory=lambda: "AC" + uuid.uuid4().hex)
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    sender: str = "+14155238886"
    report_segments: bool = True
    price: str | None = None
    # Refusals to give before accepting again: (HTTP status, Twilio error code, message).
    refusals: deque[tuple[int, int, str]] = field(default_factory=deque)
    refuse_always: tuple[int, int, str] | None = None
    # Called with each accepted message before the answer goes back (a callback racing the answer).
    before_answer: Callable[[dict[str, str]], None] | None = None
    messages: list[dict[str, str]] = field(default_factory=list)

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "from": self.sender,
            "base_url": self.url,
            **extra,
        }

    def refuse(self, status: int, code: int, message: str = "refused", *, times: int = 1) -> None:
        self.refusals.extend([(status, code, message)] * times)

    def answer(self, request: Request) -> Answer:
        if request.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json" or request.method != "POST":
            return self._error(404, 20404, "The requested resource was not found")
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return self._error(401, 20003, "Authenticate")
        form = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        refusal = self.refusals.popleft() if self.refusals else self.refuse_always
        if refusal is not None:
            return self._error(*refusal)
        if not form.get("To"):
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not form.get("Body"):
            return self._error(400, 21602, "Message body is required.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return self._error(400, 21603, "A 'From' phone number is required.")
        sid = "SM" + uuid.uuid4().hex
        message = {**form, "sid": sid}
        self.messages.append(message)
        if self.before_answer is not None:
            self.before_answer(message)
        return Answer.json(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form["To"],
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": str(twilio_segments(form["Body"])) if self.report_segments else None,
                "price": self.price,
                "price_unit": "USD",
                "error_code": None,
                "error_message": None,
            },
        )

    def _error(self, status: int, code: int, message: str) -> Answer:
        return Answer.json(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    # -- webhooks Twilio sends to us ----------------------------------------------------------
    def message(self, sid: str) -> dict[str, str]:
        return next(m for m in self.messages if m["sid"] == sid)

    def status_callback(
        self, sid: str, status: str, *, error_code: str | None = None, url: str | None = None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """The signed request Twilio makes to the message's StatusCallback: (url, form, headers)."""
        sent = self.message(sid)
        target = url or sent["StatusCallback"]
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.account_sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": sent["To"],
            "From": sent.get("From", ""),
            "ApiVersion": "2010-04-01",
        }
        if error_code is not None:
            form["ErrorCode"] = error_code
        return target, form, self.signed_headers(target, form)

    def inbound(
        self, url: str, sender: str, body: str, *, sid: str | None = None, to: str | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The signed request Twilio makes to a number's messaging webhook: (form, headers)."""
        form = {
            "MessageSid": sid or "SM" + uuid.uuid4().hex,
            "AccountSid": self.account_sid,
            "From": sender,
            "To": to or self.sender,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": str(twilio_segments(body)),
            "ApiVersion": "2010-04-01",
        }
        return form, self.signed_headers(url, form)

    def signed_headers(self, url: str, form: dict[str, str]) -> dict[str, str]:
        return {
            "X-Twilio-Signature": twilio_signature(self.auth_token, url, form),
            "Content-Type": "application/x-www-form-urlencoded",
        }

    def post_status(self, sid: str, status: str, *, error_code: str | None = None) -> httpx.Response:
        """Deliver a status callback over the network, as Twilio does."""
        url, form, headers = self.status_callback(sid, status, error_code=error_code)
        return httpx.post(url, content=urlencode(form), headers=headers, timeout=10)
