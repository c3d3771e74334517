"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and can be told to
refuse: a reply code for RCPT or for the end of DATA, for the next n messages."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.conftest import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    rcpt_reply: str | None = None  # e.g. "550 5.1.1 no such user"
    data_reply: str | None = None  # e.g. "451 4.3.0 try later"
    refuse_times: int = 0  # how many messages get the refusal (then normal service)
    # aiosmtpd reads one command at a time off the stream, so it serves pipelined commands in
    # order; it only does not say so in its EHLO reply.
    pipelining: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _refusing(self) -> bool:
        return self.refuse_times > 0

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply and self._refusing():
            self.refuse_times -= 1
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply and self._refusing():
            self.refuse_times -= 1
            return self.data_reply
        content: Any = envelope.original_content or envelope.content
        with self.lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content)))
        return "250 2.0.0 queued"


class SmtpSink:
    def __init__(self, *, pipelining: bool = False) -> None:
        self.handler = SinkHandler(pipelining=pipelining)
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, decode_data=False)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "from_email": "shop@acme.test", "from_name": "Acme", **extra}

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
