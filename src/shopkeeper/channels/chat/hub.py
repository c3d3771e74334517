"""The per-process hub of open chat sockets, keyed by workspace and customer.

A message for a customer is published here by whoever has it: the chat provider at hand-off,
the socket that stored a visitor's message (so the visitor's other tabs show it), or the relay
that heard of a message handed off in another process. Publishing never blocks: each socket
has its own queue, filled from any thread, and drops a message it has shown already (sockets
dedupe by interaction id, so a message arriving both live and by the relay shows once).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (workspace_id, customer_id)
# Tells other processes that an interaction is ready for a customer (PostgreSQL NOTIFY).
Notifier = Callable[[str, str, str], None]


class Listener(Protocol):
    def deliver(self, payload: dict[str, Any]) -> None:
        """Queue a message for the socket; callable from any thread, never blocks."""


class ChatHub:
    def __init__(self) -> None:
        self._listeners: dict[Key, set[Listener]] = defaultdict(set)
        self._lock = threading.Lock()
        self.notifier: Notifier | None = None

    def add(self, workspace_id: str, customer_id: str, listener: Listener) -> None:
        with self._lock:
            self._listeners[(workspace_id, customer_id)].add(listener)

    def remove(self, workspace_id: str, customer_id: str, listener: Listener) -> None:
        with self._lock:
            found = self._listeners.get((workspace_id, customer_id))
            if found is not None:
                found.discard(listener)
                if not found:
                    del self._listeners[(workspace_id, customer_id)]

    def publish(self, workspace_id: str, customer_id: str, payload: dict[str, Any]) -> int:
        """Give the message to this process's sockets of the customer; returns how many."""
        with self._lock:
            listeners = list(self._listeners.get((workspace_id, customer_id), ()))
        for listener in listeners:
            listener.deliver(payload)
        return len(listeners)

    def announce(self, workspace_id: str, customer_id: str, interaction_id: str) -> None:
        """Tell the other processes (best effort: their relay also polls, so nothing is lost)."""
        notifier = self.notifier
        if notifier is None:
            return
        try:
            notifier(workspace_id, customer_id, interaction_id)
        except Exception:  # a lost notification only delays the message until the next poll
            log.warning("chat: could not notify other processes", exc_info=True)

    def watched(self) -> dict[str, list[str]]:
        """workspace → customers with an open socket here (what the relay looks for)."""
        out: dict[str, list[str]] = defaultdict(list)
        with self._lock:
            for workspace_id, customer_id in self._listeners:
                out[workspace_id].append(customer_id)
        return dict(out)

    def count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._listeners.values())


# One per process: sockets, the provider and the relay of a process meet here.
hub = ChatHub()
