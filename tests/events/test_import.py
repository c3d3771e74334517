"""SPEC §3: CSV/JSONL bulk import through the same validation and identity resolution."""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlalchemy import func, select

from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from shopkeeper.events.importer import csv_customers, import_messages, jsonl_messages
from shopkeeper.events.models import Event
from tests.conftest import WorkspaceKeys


def test_jsonl_import_stores_good_lines_reports_bad_ones_and_is_idempotent(
    db: Database, workspace: WorkspaceKeys, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    lines = [
        orjson.dumps(
            {"type": "track", "anonymousId": "a-1", "event": "Product Viewed", "timestamp": "2026-01-02T03:04:05Z"}
        ),
        b"{not json",
        orjson.dumps(
            {"type": "identify", "anonymousId": "a-1", "userId": "u-1", "traits": {"email": "imp@example.com"}}
        ),
        b"",
        orjson.dumps({"type": "track", "event": "Nobody"}),
        orjson.dumps({"type": "track", "userId": "u-1", "event": "Order Completed", "messageId": "given-id"}),
        orjson.dumps({"type": "track", "userId": "u-1", "event": "Has \x00 NUL"}),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")

    report = import_messages(db, workspace.id, jsonl_messages(path))
    assert (report.lines, report.stored, report.rejected) == (6, 3, 3)
    assert [n for n, _ in report.errors] == [2, 5, 7]
    assert "NUL" in report.errors[2][1]
    assert "malformed JSON" in report.errors[0][1]
    assert "userId or anonymousId" in report.errors[1][1]

    again = import_messages(db, workspace.id, jsonl_messages(path))
    assert (again.stored, again.duplicates) == (0, 3)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 3
        owners = set(s.scalars(select(Event.customer_id)))
    assert len(owners) == 1  # the anonymous history joined the identified profile


def test_csv_customer_import_links_identities_and_types_traits(
    db: Database, workspace: WorkspaceKeys, tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        "user_id,email,phone,plan,lifetime_orders,vip\n"
        "c-1,One@Example.com,+14155550123,pro,12,true\n"
        "c-2,two@example.com,,basic,0,false\n"
        ",,,orphan,1,false\n"
        "c-3,three@example.com,,gold,3,true,extra\n",
        encoding="utf-8",
    )
    report = import_messages(db, workspace.id, csv_customers(path))
    assert report.stored == 2
    assert [n for n, _ in report.errors] == [4, 5]
    with db.session() as s:
        one = s.scalar(
            select(Identity.customer_id).where(Identity.kind == "email", Identity.value == "one@example.com")
        )
        customer = s.get(Customer, one)
        assert customer is not None
        assert customer.traits == {
            "email": "One@Example.com",
            "phone": "+14155550123",
            "plan": "pro",
            "lifetime_orders": 12,
            "vip": True,
        }
        phone_owner = s.scalar(select(Identity.customer_id).where(Identity.kind == "phone"))
    assert phone_owner == one
    assert import_messages(db, workspace.id, csv_customers(path)).duplicates == 2
