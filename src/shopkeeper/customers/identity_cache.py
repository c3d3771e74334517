"""A bounded, process-wide cache of identifier → customer, dropped whenever identities move.

Identities only ever move by merge, unmerge or erasure; each bumps the workspace's
`identity_epoch`, and the writer compares epochs before every batch, so a cache filled in one
process cannot misattribute events after another process merged profiles.

Bounded by two generations of plain dicts (an approximate LRU): a hit in the old generation is
promoted, and when the young one is full the old one is dropped. Each operation is a dict
lookup — a third of the cost of a true LRU — on a path taken once per identifier per event.
"""

from __future__ import annotations

import threading

Key = tuple[str, str, str]  # (workspace_id, kind, value)


class IdentityCache:
    def __init__(self, maxsize: int = 200_000) -> None:
        self._generation_size = max(maxsize // 2, 1)
        self._enabled = maxsize > 0
        self._young: dict[Key, str] = {}
        self._old: dict[Key, str] = {}
        self._epochs: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, workspace_id: str, kind: str, value: str) -> str | None:
        key = (workspace_id, kind, value)
        hit = self._young.get(key)
        if hit is None:
            hit = self._old.get(key)
            if hit is not None:
                self.put(workspace_id, kind, value, hit)
        return hit

    def put(self, workspace_id: str, kind: str, value: str, customer_id: str) -> None:
        if not self._enabled:
            return
        with self._lock:
            if len(self._young) >= self._generation_size:
                self._old = self._young
                self._young = {}
            self._young[(workspace_id, kind, value)] = customer_id

    def clear(self) -> None:
        with self._lock:
            self._young = {}
            self._old = {}
            self._epochs.clear()

    def observe_epoch(self, workspace_id: str, epoch: int) -> None:
        """Forget everything if this workspace's identities moved since we last looked."""
        with self._lock:
            known = self._epochs.get(workspace_id)
            if known is not None and known != epoch:
                self._young = {}
                self._old = {}
                self._epochs.clear()
            self._epochs[workspace_id] = epoch

    def note_own_bump(self, workspace_id: str) -> None:
        """This process moved identities (and updated the cache itself): expect epoch + 1."""
        with self._lock:
            if workspace_id in self._epochs:
                self._epochs[workspace_id] += 1

    def __len__(self) -> int:
        return len(self._young) + len(self._old)
