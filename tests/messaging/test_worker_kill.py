"""SPEC §12: kill -9 of a delivery worker at any point loses no send and sends none twice.

A real `shopkeeper worker` process delivers to a real SMTP server (slowed a little, so the kill
lands mid-stream), is killed with SIGKILL, and a second worker takes over once the lease runs
out. The SMTP server must have each Message-ID at most once; every send must end final; a send
recorded "sent" that the server never got can only be the one in flight, marked unconfirmed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Send
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer
from tests.messaging.factories import add_provider, make_template, plan
from tests.messaging.smtp_sink import SinkHandler, SmtpSink


class SlowHandler(SinkHandler):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.005)
        return await super().handle_DATA(server, session, envelope)


def _worker(db_url: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHOPKEEPER_DATABASE_URL": db_url, "SHOPKEEPER_LOG_LEVEL": "warning"}
    return subprocess.Popen(
        [sys.executable, "-m", "shopkeeper", "worker", "--lease-seconds", "2", "--batch", "20", *args],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_kill_9_of_a_worker_neither_loses_nor_duplicates_a_send(
    db_url: str, db: Database, workspace: WorkspaceKeys, tmp_path: Path
) -> None:
    sink = SmtpSink()
    sink.handler = SlowHandler()
    sink.controller.handler = sink.handler
    sink.start()
    try:
        make_template(db, workspace.id)
        add_provider(db, workspace.id, name="smtp", settings=sink.settings())
        total = 150
        for n in range(total):
            plan(db, workspace.id, make_customer(db, workspace.id, f"k{n}", email=f"k{n}@example.com"))

        first = _worker(db_url, tmp_path / "worker.log")
        deadline = time.monotonic() + 60
        while len(sink.received) < 40:
            assert time.monotonic() < deadline and first.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = len(sink.received)
        assert at_kill < total, "the worker finished before it could be killed"

        time.sleep(2.5)  # the dead worker's lease runs out
        second = _worker(db_url, tmp_path / "worker.log", "--once")
        assert second.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()
    finally:
        sink.stop()

    ids = [r.message["Message-ID"] for r in sink.received]
    assert len(ids) == len(set(ids)), "a message was sent twice"
    with db.session() as s:
        sends = list(s.scalars(select(Send)))
    assert len(sends) == total
    assert all(send.stage == "done" for send in sends), [(s.id, s.stage, s.status) for s in sends if s.stage != "done"]
    received = set(ids)
    for send in sends:
        assert send.status == "sent", (send.id, send.status, send.reason)
    never_arrived = [send for send in sends if f"<{send.id}@acme.test>" not in received]
    # Only the message in flight at the kill can be "sent" without having arrived, and it says so.
    assert len(never_arrived) <= 1
    for send in never_arrived:
        assert send.reason is not None and send.reason.startswith("unconfirmed"), send.reason
