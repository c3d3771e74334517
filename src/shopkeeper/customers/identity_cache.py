"""A bounded, process-wide cache of identifier → customer, dropped whenever identities move.

Identities only ever move by merge, unmerge or erasure; each bumps the workspace's
`identity_epoch`, and the writer compares epochs before every batch, so a cache filled in one
process cannot misattribute events after another process merged profiles.
"""

from __future__ import annotations

import threading

from cachetools import LRUCache

Key = tuple[str, str, str]  # (workspace_id, kind, value)


class IdentityCache:
    def __init__(self, maxsize: int = 200_000) -> None:
        self._enabled = maxsize > 0
        self._map: LRUCache[Key, str] = LRUCache(maxsize=max(maxsize, 1))
        self._epochs: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, workspace_id: str, kind: str, value: str) -> str | None:
        if not self._enabled:
            return None
        with self._lock:
            return self._map.get((workspace_id, kind, value))

    def put(self, workspace_id: str, kind: str, value: str, customer_id: str) -> None:
        if self._enabled:
            with self._lock:
                self._map[(workspace_id, kind, value)] = customer_id

    def clear(self) -> None:
        with self._lock:
            self._map.clear()
            self._epochs.clear()

    def observe_epoch(self, workspace_id: str, epoch: int) -> None:
        """Forget everything if this workspace's identities moved since we last looked."""
        with self._lock:
            known = self._epochs.get(workspace_id)
            if known is not None and known != epoch:
                self._map.clear()
                self._epochs.clear()
            self._epochs[workspace_id] = epoch

    def __len__(self) -> int:
        return len(self._map)
