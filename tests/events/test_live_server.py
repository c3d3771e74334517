"""Against a real `shopkeeper serve` process on loopback: the official Segment Python library,
curl, and a kill -9 in the middle of ingestion that must not lose one acknowledged event."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from segment.analytics import Client
from sqlalchemy import select

from shopkeeper.customers.models import Identity
from shopkeeper.db.session import Database
from shopkeeper.events.models import Event
from tests.conftest import LiveServer, WorkspaceKeys, start_server


def events(db: Database, ws: str) -> list[Event]:
    with db.session() as s:
        return list(s.scalars(select(Event).where(Event.workspace_id == ws).order_by(Event.timestamp)))


def test_the_official_segment_client_works_by_changing_only_its_host(
    live_server: LiveServer, db: Database, workspace: WorkspaceKeys
) -> None:
    errors: list[Any] = []
    client = Client(
        workspace.write_key,
        host=live_server.url,
        sync_mode=True,
        max_retries=0,
        on_error=lambda exc, batch: errors.append(exc),
    )
    client.page(anonymous_id="anon-77", name="Home", properties={"url": "https://shop.test/"})
    client.track(anonymous_id="anon-77", event="Product Viewed", properties={"sku": "SKU-1", "price": 19.9})
    client.identify("user-77", {"email": "Seg@Example.com", "name": "Seg Ment"}, anonymous_id="anon-77")
    client.track("user-77", "Order Completed", {"order_id": "o-1", "total": 19.9})
    client.screen("user-77", name="Cart")
    client.group("user-77", "org-5", {"name": "Org"})
    client.alias("anon-older", "user-77")
    client.flush()
    assert errors == []

    stored = events(db, workspace.id)
    assert [e.type for e in stored] == ["page", "track", "identify", "track", "screen", "group", "alias"]
    assert len({e.customer_id for e in stored}) == 1
    with db.session() as s:
        rows = s.execute(select(Identity.kind, Identity.value).where(Identity.customer_id == stored[0].customer_id))
        kinds = dict(rows.all())
    assert kinds["email"] == "seg@example.com"
    assert stored[3].properties == {"order_id": "o-1", "total": 19.9}
    assert all(e.message_id for e in stored)


def test_segment_client_in_batching_mode_with_gzip(
    live_server: LiveServer, db: Database, workspace: WorkspaceKeys
) -> None:
    errors: list[Any] = []
    client = Client(
        workspace.write_key,
        host=live_server.url,
        gzip=True,
        upload_size=50,
        max_retries=0,
        on_error=lambda exc, batch: errors.append(exc),
    )
    for i in range(240):
        client.track(f"user-{i % 12}", "Tick", {"i": i})
    client.flush()
    client.join()
    assert errors == []
    assert sorted(e.properties["i"] for e in events(db, workspace.id) if e.properties) == list(range(240))


def test_curl_works_against_the_server(live_server: LiveServer, db: Database, workspace: WorkspaceKeys) -> None:
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-u",
            f"{workspace.write_key}:",
            f"{live_server.url}/v1/track",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"userId":"curl-user","event":"Curled"}',
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert out.stdout == '{"success":true}'
    assert [e.name for e in events(db, workspace.id)] == ["Curled"]
    bad = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            f"{workspace.write_key}:",
            f"{live_server.url}/v1/track",
            "-d",
            '{"userId":"curl-user"}',
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert bad.stdout == "400"


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_event(
    db_url: str, db: Database, workspace: WorkspaceKeys, tmp_path: Path
) -> None:
    server = start_server(db_url, tmp_path / "server.log")
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    enough = threading.Event()

    def sender(worker: int) -> None:
        with httpx.Client(base_url=server.url, auth=(workspace.write_key, ""), timeout=10) as http:
            while not stop.is_set():
                ids = [f"k{worker}-{uuid.uuid4().hex}" for _ in range(50)]
                batch = [
                    {"type": "track", "userId": f"u{worker}-{n % 7}", "event": "E", "messageId": m}
                    for n, m in enumerate(ids)
                ]
                try:
                    r = http.post("/v1/batch", json={"batch": batch})
                except httpx.HTTPError:
                    return  # the server died under us: these were never acknowledged
                if r.status_code == 200:
                    with lock:
                        acknowledged.extend(ids)
                        if len(acknowledged) >= 3000:
                            enough.set()

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    assert enough.wait(60), "the server did not acknowledge 3,000 events in time"
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    stop.set()
    for t in threads:
        t.join()

    # A restart on the same store recovers it (WAL replay on SQLite) and serves again.
    restarted = start_server(db_url, tmp_path / "server2.log")
    try:
        with db.session() as s:
            stored = set(s.scalars(select(Event.message_id).where(Event.workspace_id == workspace.id)))
        missing = set(acknowledged) - stored
        assert not missing, f"{len(missing)} acknowledged events lost"
        assert httpx.get(f"{restarted.url}/health").status_code == 200
    finally:
        restarted.stop()
    logging.getLogger(__name__).info("acknowledged %d, stored %d", len(acknowledged), len(stored))
