"""Bulk import of events (JSONL, one Segment message per line) and customers (CSV, one profile
per row) through the same validation and identity resolution as the HTTP API.

Every line is checked on its own: bad lines are reported with their line number while the good
ones are stored. A line without a messageId gets one derived from its content, so importing the
same file twice stores it once.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from shopkeeper import clock
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid, ShopkeeperError
from shopkeeper.events.ingest import IngestBatch, store
from shopkeeper.events.limits import MAX_EVENT_BYTES
from shopkeeper.events.schemas import InboundEvent, to_inbound
from shopkeeper.guard_middleware import has_nul

CHUNK = 2000
# CSV columns that are identifiers rather than traits.
ID_COLUMNS = {"user_id": "userId", "userid": "userId", "anonymous_id": "anonymousId", "anonymousid": "anonymousId"}


@dataclass
class ImportReport:
    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)


def _content_id(prefix: str, raw: bytes) -> str:
    return f"{prefix}_{hashlib.sha256(raw).hexdigest()[:32]}"


def jsonl_messages(path: Path) -> Iterator[tuple[int, dict[str, Any] | Invalid]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if has_nul(line):
                yield (
                    number,
                    Invalid("the line contains a NUL character (\\u0000), which cannot be stored", field="body"),
                )
                continue
            if len(line) > MAX_EVENT_BYTES:
                yield number, Invalid(f"event is over the {MAX_EVENT_BYTES // 1024} KB limit", field="body")
                continue
            try:
                payload = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, Invalid(f"malformed JSON ({exc.msg})", field="body")
                continue
            if isinstance(payload, dict) and not payload.get("messageId"):
                payload["messageId"] = _content_id("imp", line.strip())
            yield number, payload


_INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,14})")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+")
TEXT_COLUMNS = {"email", "phone", "zip", "postal_code", "postcode"}


def _cell(column: str, value: str) -> Any:
    """CSV is text; read plain numbers and booleans back so traits keep their types. Anything
    that only looks numeric (+44…, 0123, 1e5) stays text: phone numbers and codes must survive."""
    text = value.strip()
    if column.lower() in TEXT_COLUMNS:
        return text
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return text


def csv_customers(path: Path) -> Iterator[tuple[int, dict[str, Any] | Invalid]]:
    """Each row becomes an identify call: user_id/anonymous_id columns identify, the rest are traits
    (empty cells are left out)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            yield 1, Invalid("the CSV file has no header row", field="header")
            return
        for row in reader:
            number = reader.line_num
            if None in row:
                yield number, Invalid("the row has more cells than the header", field="row")
                continue
            message: dict[str, Any] = {"type": "identify", "traits": {}}
            for column, value in row.items():
                if value is None or not value.strip():
                    continue
                if "\x00" in value or "\x00" in column:
                    message = {"invalid": f"column {column.strip()!r} contains a NUL character"}
                    break
                key = column.strip()
                if key.lower() in ID_COLUMNS:
                    message[ID_COLUMNS[key.lower()]] = value.strip()
                else:
                    message["traits"][key] = _cell(key, value)
            if "invalid" in message:
                yield number, Invalid(str(message["invalid"]), field="row")
                continue
            message["messageId"] = _content_id("csv", orjson.dumps(message, option=orjson.OPT_SORT_KEYS))
            yield number, message


def import_messages(
    db: Database,
    workspace_id: str,
    messages: Iterable[tuple[int, dict[str, Any] | Invalid]],
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    report = ImportReport()
    cache = IdentityCache(200_000)
    pending: list[InboundEvent] = []

    def flush() -> None:
        if not pending:
            return
        now = clock.now()
        with db.session(write=True) as session:
            stats = store(session, [IngestBatch(workspace_id, pending)], cache, now)
        report.stored += stats.stored
        report.duplicates += stats.duplicates
        if progress:
            progress(len(pending))
        pending.clear()

    for number, message in messages:
        report.lines += 1
        try:
            if isinstance(message, Invalid):
                raise message
            pending.append(to_inbound(message, received_at=clock.now()))
        except ShopkeeperError as exc:
            report.errors.append((number, exc.message))
            if progress:
                progress(1)
        if len(pending) >= CHUNK:
            flush()
    flush()
    return report
