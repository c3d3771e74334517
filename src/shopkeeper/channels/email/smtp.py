"""The SMTP provider: one connection kept open between messages, STARTTLS or implicit TLS,
PIPELINING when the server offers it, and the commit point just before the message data goes
out with its final "." — the last moment at which the server cannot yet have the message. A
reply lost after that dot is "unconfirmed", never a reason to resend."""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
from collections.abc import Mapping
from typing import Any

from shopkeeper.channels.base import OutboundMessage, ProviderError, ProviderRegistry, ProviderResult
from shopkeeper.channels.email.message import DkimKey, Sender, build, check_key, verp_address
from shopkeeper.errors import Invalid

_LEADING_DOT = re.compile(rb"(?m)^\.")
TLS_MODES = ("none", "starttls", "tls")


class SmtpProvider:
    channel = "email"
    dedupes = False

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.host = str(settings.get("host", "127.0.0.1"))
        self.port = int(settings.get("port", 25))
        self.tls = str(settings.get("tls", "none"))
        if self.tls not in TLS_MODES:
            raise Invalid(f"settings.tls: one of {', '.join(TLS_MODES)}", field="settings.tls")
        self.verify_tls = bool(settings.get("verify_tls", True))
        self.username = settings.get("username")
        self.password = settings.get("password")
        self.timeout = float(settings.get("timeout", 30))
        # VERP: the envelope sender carries the send id (bounces+<send id>@domain); docs/email-inbound.md.
        self.verp = bool(settings.get("verp", False))
        from_email = settings.get("from_email")
        if not isinstance(from_email, str) or not from_email:
            raise Invalid("settings.from_email: required for an SMTP provider", field="settings.from_email")
        self.sender = Sender(
            from_email, settings.get("from_name"), settings.get("reply_to"), settings.get("return_path")
        )
        self.sender.check()
        dkim = settings.get("dkim")
        self.dkim: DkimKey | None = None
        if isinstance(dkim, Mapping):
            try:
                self.dkim = DkimKey(
                    str(dkim["domain"]),
                    str(dkim["selector"]),
                    str(dkim["private_key"]).encode(),
                    str(dkim.get("algorithm", "rsa-sha256")),
                )
            except KeyError as exc:
                raise Invalid(f"settings.dkim.{exc.args[0]}: required", field=f"settings.dkim.{exc.args[0]}") from None
            check_key(self.dkim, self.sender)
        self._conn: smtplib.SMTP | None = None
        self.connections = 0  # opened so far: connection reuse is visible in tests and the bench

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        try:
            conn: smtplib.SMTP
            if self.tls == "tls":
                conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            conn.ehlo()
            if self.tls == "starttls":
                conn.starttls(context=self._context())
                conn.ehlo()
            if self.username:
                conn.login(str(self.username), str(self.password or ""))
        except smtplib.SMTPAuthenticationError as exc:
            raise ProviderError(f"SMTP login refused: {exc.smtp_code}", temporary=False) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ProviderError(f"cannot reach {self.host}:{self.port}: {exc}", temporary=True) from None
        # The body and the final "." go out as separate writes (the commit point sits between
        # them): without TCP_NODELAY, Nagle's algorithm holds the dot back until the server's
        # delayed ACK, 40 ms per message.
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = conn
        self.connections += 1
        return conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._conn.quit()
            self._conn = None

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def send(self, message: OutboundMessage) -> ProviderResult:
        message_id, raw = build(message, self.sender, dkim_key=self.dkim)
        envelope_from = self.sender.return_path or self.sender.email
        if self.verp:
            envelope_from = verp_address(envelope_from, message.send_id)
        for attempt in (1, 2):  # a pooled connection the server closed meanwhile: one reconnect
            conn = self._connect()
            try:
                if conn.has_extn("pipelining"):
                    self._pipelined_envelope(conn, envelope_from, message.to)
                else:
                    self._envelope(conn, envelope_from, message.to)
                    code, reply = conn.docmd("DATA")
                    if code != 354:
                        self._reset(conn)
                        raise ProviderError(f"DATA refused: {code} {_text(reply)}", temporary=code < 500)
                break
            except smtplib.SMTPServerDisconnected:
                self._drop()
                if attempt == 2:
                    raise ProviderError("the SMTP server closed the connection", temporary=True) from None
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                raise ProviderError(f"SMTP: {exc}", temporary=True) from None
        body = _LEADING_DOT.sub(b"..", raw)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        message.commit_point()  # from here the server may have it
        try:
            # Body and final dot in one write: one system call and one wake-up of the server
            # fewer per message. A write that fails did not hand over its last bytes — the dot —
            # so the server cannot have accepted the message and trying again is safe.
            conn.send(body + b".\r\n")
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise ProviderError(f"SMTP: the message did not go through: {exc}", temporary=True) from None
        try:
            code, reply = conn.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise ProviderError(
                f"no reply after the message was handed over: {exc}", temporary=False, code="unconfirmed"
            ) from None
        if code != 250:
            self._reset(conn)
            raise ProviderError(f"message refused: {code} {_text(reply)}", temporary=code < 500, code=str(code))
        return ProviderResult(message_id, data={"message_id": message_id, "reply": _text(reply)})

    def _envelope(self, conn: smtplib.SMTP, envelope_from: str, to: str) -> None:
        code, reply = conn.mail(envelope_from)
        if code != 250:
            self._reset(conn)
            raise ProviderError(f"sender refused: {code} {_text(reply)}", temporary=code < 500)
        code, reply = conn.rcpt(to)
        if code not in (250, 251):
            self._reset(conn)
            # A 5xx here is the receiving server refusing the address itself: a hard bounce.
            raise ProviderError(
                f"recipient refused: {code} {_text(reply)}",
                temporary=code < 500,
                code="rejected" if code >= 500 else None,
            )

    def _pipelined_envelope(self, conn: smtplib.SMTP, envelope_from: str, to: str) -> None:
        """MAIL, RCPT and DATA in one write and their three replies read after (RFC 2920): one
        round trip instead of three. The server refuses DATA when no recipient was accepted, so
        a refused sender or recipient never opens a message."""
        conn.send(f"MAIL FROM:{smtplib.quoteaddr(envelope_from)}\r\nRCPT TO:{smtplib.quoteaddr(to)}\r\nDATA\r\n")
        (mail_code, mail_reply), (rcpt_code, rcpt_reply), (data_code, data_reply) = (
            conn.getreply(),
            conn.getreply(),
            conn.getreply(),
        )
        if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
            # A server that opened DATA after refusing the envelope: the only safe way out
            # without sending an empty message is to drop the connection.
            self._drop()
            raise ProviderError(f"the SMTP server opened DATA after {mail_code}/{rcpt_code}", temporary=True)
        if mail_code != 250:
            self._reset(conn)
            raise ProviderError(f"sender refused: {mail_code} {_text(mail_reply)}", temporary=mail_code < 500)
        if rcpt_code not in (250, 251):
            self._reset(conn)
            raise ProviderError(
                f"recipient refused: {rcpt_code} {_text(rcpt_reply)}",
                temporary=rcpt_code < 500,
                code="rejected" if rcpt_code >= 500 else None,
            )
        if data_code != 354:
            self._reset(conn)
            raise ProviderError(f"DATA refused: {data_code} {_text(data_reply)}", temporary=data_code < 500)

    def _reset(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


ProviderRegistry.register("email", "smtp", SmtpProvider)
