"""Carries chat messages handed off in another process to this process's sockets.

On PostgreSQL the provider's process sends `NOTIFY shopkeeper_chat` with the interaction's id
and this relay, listening on its own connection, reads the row (written before the hand-off)
and publishes it to the hub at once. Both engines also poll the interactions of the customers
with an open socket here, every `poll_seconds`: on SQLite that is the only way between processes
(a `shopkeeper worker` beside `shopkeeper serve`), on PostgreSQL it covers a notification lost
while the listening connection was down. Sockets drop what they have shown already.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import text

from shopkeeper import clock
from shopkeeper.channels.chat import service
from shopkeeper.channels.chat.hub import ChatHub, hub
from shopkeeper.db.session import Database

log = logging.getLogger(__name__)
CHANNEL = "shopkeeper_chat"
# How far back a poll looks: longer than a hand-off can take between prepare and finish.
POLL_WINDOW = timedelta(minutes=15)


class PgNotifier:
    """Tells every listening process that a chat interaction is ready (one NOTIFY, autocommit)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, workspace_id: str, customer_id: str, interaction_id: str) -> None:
        payload = orjson.dumps({"w": workspace_id, "c": customer_id, "i": interaction_id}).decode()
        with self.db.engine.connect() as conn:
            conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})
            conn.commit()


def notify_through(db: Database, chat_hub: ChatHub | None = None) -> None:
    """Make this process's chat hand-offs reach the other processes (PostgreSQL only; on SQLite
    their relays poll)."""
    if db.dialect == "postgresql":
        (chat_hub or hub).notifier = PgNotifier(db)


class ChatRelay:
    def __init__(self, db: Database, chat_hub: ChatHub | None = None, *, poll_seconds: float | None = None) -> None:
        self.db = db
        self.hub = chat_hub or hub
        self.poll_seconds = poll_seconds or (5.0 if db.dialect == "postgresql" else 0.5)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._published: dict[str, Any] = {}  # interaction id → created_at, pruned by the window

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        notify_through(self.db, self.hub)
        self._stopping.clear()
        target = self._listen if self.db.dialect == "postgresql" else self._poll_loop
        self._thread = threading.Thread(target=target, name="chat-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        notifier = self.hub.notifier
        if isinstance(notifier, PgNotifier) and notifier.db is self.db:
            self.hub.notifier = None

    # -- polling (both engines) ----------------------------------------------------------------
    def _poll_loop(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            self._safe_poll()

    def _safe_poll(self) -> None:
        try:
            self.poll()
        except Exception:
            log.warning("chat relay: poll failed; trying again", exc_info=True)

    def poll(self) -> int:
        """Publish the recent chat messages of every watched customer not published yet."""
        watched = self.hub.watched()
        if not watched:
            self._published.clear()
            return 0
        since = clock.now() - POLL_WINDOW
        published = 0
        with self.db.session() as session:
            for workspace_id, customer_ids in watched.items():
                for start in range(0, len(customer_ids), 500):
                    chunk = customer_ids[start : start + 500]
                    for row in service.recent(session, workspace_id, chunk, since):
                        if row.id in self._published:
                            continue
                        self._published[row.id] = row.created_at
                        self.hub.publish(workspace_id, row.customer_id, service.message_json(row))
                        published += 1
        self._published = {k: v for k, v in self._published.items() if v >= since}
        return published

    # -- LISTEN / NOTIFY (PostgreSQL) ----------------------------------------------------------
    def _conninfo(self) -> str:
        url = self.db.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def _listen(self) -> None:
        import psycopg

        backoff = 0.5
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo(), autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    backoff = 0.5
                    self._safe_poll()  # whatever was announced while this connection was down
                    last_poll = time.monotonic()
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=min(0.25, self.poll_seconds)):  # stop() waits no longer
                            self._on_notify(note.payload)
                        if time.monotonic() - last_poll >= self.poll_seconds:
                            self._safe_poll()
                            last_poll = time.monotonic()
            except Exception:
                if self._stopping.is_set():
                    return
                log.warning("chat relay: listening connection lost; reconnecting", exc_info=True)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _on_notify(self, raw: str) -> None:
        try:
            note = orjson.loads(raw)
            workspace_id, customer_id, interaction_id = str(note["w"]), str(note["c"]), str(note["i"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("chat relay: ignoring a malformed notification %r", raw[:200])
            return
        if customer_id not in self.hub.watched().get(workspace_id, ()):
            return
        with self.db.session() as session:
            row = service.interaction_for(session, workspace_id, interaction_id)
        if row is not None:
            self._published[row.id] = row.created_at
            self.hub.publish(workspace_id, customer_id, service.message_json(row))
