"""Sortable string ids (ULID) with a short type prefix, so an id says what it names."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    return f"{prefix}_{str(ULID()).lower()}"
