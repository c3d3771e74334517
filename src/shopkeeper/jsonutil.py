"""orjson wrappers: one place decides how JSON is written (the hot path writes a lot of it)."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def loads(value: str | bytes) -> Any:
    return orjson.loads(value)
