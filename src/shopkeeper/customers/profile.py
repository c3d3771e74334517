"""Profile attributes read from events: a valid IANA time zone and a BCP 47-ish locale."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1024)
def valid_timezone(name: str) -> str | None:
    if not name or len(name) > 64:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def timezone_from(*sources: dict[str, Any] | None) -> str | None:
    for source in sources:
        if source:
            value = source.get("timezone")
            if isinstance(value, str) and (tz := valid_timezone(value)):
                return tz
    return None


def locale_from(*sources: dict[str, Any] | None) -> str | None:
    for source in sources:
        if source:
            value = source.get("locale")
            if isinstance(value, str) and 1 < len(value) <= 35:
                return value
    return None
