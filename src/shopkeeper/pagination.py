"""Opaque cursors for keyset pagination: stable under inserts, cheap at any depth."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from shopkeeper import jsonutil
from shopkeeper.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(*values: Any) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(jsonutil.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = jsonutil.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise Invalid("cursor: not a cursor this API returned", field="cursor") from None
    if not isinstance(values, list) or len(values) != arity:
        raise Invalid("cursor: not a cursor this API returned", field="cursor")
    return values


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    at, id_ = decode_cursor(cursor, 2)
    try:
        when = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise Invalid("cursor: not a cursor this API returned", field="cursor") from None
    if when.tzinfo is None or not isinstance(id_, str):
        raise Invalid("cursor: not a cursor this API returned", field="cursor")
    return when, id_
