"""The built-in receiving SMTP server (aiosmtpd): point an MX record, a reply-to address or a
bounce address at it, and replies, bounces and complaints land in Shopkeeper.

- RCPT: a recipient no workspace claims (routing.py) is refused with 550, so the server is
  never an open relay and unknown mail never takes space; more than `max_recipients` get 452.
- Size: the limit is announced with SIZE and a larger message is refused with 552.
- DATA: the message is handled (receive.py) in a worker thread, off the event loop, and 250 is
  answered only after its rows are committed; a failure answers 451 so the sender retries.

The server runs on its own event loop in a daemon thread, inside `shopkeeper serve` (when
`inbound_smtp_port` is set) or alone (`shopkeeper inbound-smtp`). It binds with SO_REUSEPORT,
so the processes of `serve --workers N` share the port.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from shopkeeper import clock
from shopkeeper.channels.email.receive import Receipt, receive
from shopkeeper.channels.email.routing import Recipient, route
from shopkeeper.config import Settings
from shopkeeper.db.session import Database

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
IDENT = "Shopkeeper ESMTP"


class InboundHandler:
    """aiosmtpd hooks: route at RCPT, store at DATA (both in worker threads: they use the database)."""

    def __init__(self, db: Database, *, max_recipients: int = MAX_RECIPIENTS, threads: int = 4) -> None:
        self.db = db
        self.max_recipients = max_recipients
        self.threads = threads
        self.executor: ThreadPoolExecutor | None = None

    def _route(self, address: str) -> Recipient | None:
        with self.db.session() as session:
            return route(session, address)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        loop = asyncio.get_running_loop()
        try:
            recipient = await loop.run_in_executor(self.executor, self._route, address)
        except Exception:
            log.exception("inbound smtp: routing %r failed", address)
            return "451 4.3.0 Temporary failure, please try again later"
        if recipient is None:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def _receive(self, mail_from: str | None, rcpt_tos: list[str], raw: bytes) -> Receipt:
        return receive(self.db, mail_from, rcpt_tos, raw, clock.now())

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content: Any = envelope.original_content or envelope.content
        raw = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else bytes(content or b"")
        mail_from = envelope.mail_from if envelope.mail_from not in (None, "", "<>") else None
        loop = asyncio.get_running_loop()
        try:
            receipt = await loop.run_in_executor(self.executor, self._receive, mail_from, list(envelope.rcpt_tos), raw)
        except Exception:
            log.exception("inbound smtp: a message from %r could not be stored", mail_from)
            return "451 4.3.0 Temporary failure, please try again later"
        log.info("inbound smtp: from %r to %s: %s", mail_from, envelope.rcpt_tos, receipt.summary())
        return f"250 2.0.0 OK: {receipt.summary()}"


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class InboundSmtpServer:
    def __init__(
        self,
        db: Database,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = "shopkeeper.invalid",
        max_bytes: int = 25 * 1024 * 1024,
        tls: ssl.SSLContext | None = None,
        reuse_port: bool = False,
        threads: int = 4,
    ) -> None:
        self.db = db
        self.host = host
        self.port = port  # 0: any free port; the bound one is here after start()
        self.hostname = hostname
        self.max_bytes = max_bytes
        self.tls = tls
        self.reuse_port = reuse_port
        self.handler = InboundHandler(db, threads=threads)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        reuse_port: bool = False,
    ) -> InboundSmtpServer:
        return cls(
            db,
            host=host or settings.inbound_smtp_host,
            port=port if port is not None else (settings.inbound_smtp_port or 0),
            hostname=settings.inbound_smtp_hostname,
            max_bytes=settings.inbound_smtp_max_bytes,
            tls=tls_context(settings.inbound_smtp_tls_cert, settings.inbound_smtp_tls_key),
            reuse_port=reuse_port,
        )

    def _protocol(self) -> SMTP:
        assert self._loop is not None
        return SMTP(
            self.handler,
            data_size_limit=self.max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.hostname,
            ident=IDENT,
            tls_context=self.tls,
            timeout=300,
            loop=self._loop,
        )

    def start(self) -> InboundSmtpServer:
        """Listen; returns once the port is bound (raises if it cannot be)."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self.handler.executor = ThreadPoolExecutor(max_workers=self.handler.threads, thread_name_prefix="inbound-smtp")
        bound = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                server = loop.run_until_complete(
                    loop.create_server(self._protocol, host=self.host, port=self.port, reuse_port=self.reuse_port)
                )
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread, which raises it
                failure.append(exc)
                bound.set()
                loop.close()
                return
            self.port = int(server.sockets[0].getsockname()[1])
            bound.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.close()

        thread = threading.Thread(target=run, name="inbound-smtp", daemon=True)
        thread.start()
        bound.wait()
        if failure:
            thread.join()
            self._loop = None
            self.handler.executor.shutdown()
            raise failure[0]
        self._thread = thread
        log.info("inbound smtp: listening on %s:%s", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None
        self._loop = None
        if self.handler.executor is not None:
            self.handler.executor.shutdown(wait=True)
            self.handler.executor = None
