"""`shopkeeper bench send`: outbound email through the real pipeline to a real SMTP server on
loopback (SPEC §11: render + hand-off ≥ 2,000 messages/s).

Two figures, because they answer two questions:
- **render + hand-off**: the stage the target names — Liquid render of a realistic HTML mail,
  click and open tracking, MIME build (and DKIM when asked), SMTP hand-off over a reused
  connection — run over `connections` SMTP connections, without the database.
- **pipeline**: the whole outbox path per message — claim, consent gate and caps under the
  customer's lock, render, interaction row, commit point, hand-off, status history — with
  `workers` delivery worker processes.

The sink runs in its own process and counts messages and distinct Message-IDs, so the bench
also proves that every planned send arrived exactly once.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from shopkeeper import clock
from shopkeeper.bench.server import free_port, fresh_database, provision
from shopkeeper.errors import Invalid

Phase = Callable[[str, int], Callable[[int], None]]
SINKS = ("lean", "aiosmtpd")

SUBJECT = "{{ customer.first_name | default: 'Hello' }}, your {{ event.product }} is waiting"
HTML = (
    "<html><body><table width='600'><tr><td>"
    "<h1>Hi {{ customer.first_name | default: 'there' }}</h1>"
    "<p>You left <b>{{ event.product }}</b> in your basket. It is still {{ event.price }}.</p>"
    "{% for i in (1..4) %}<p><a href='https://shop.example.com/p/{{ i }}?utm_source=email'>Item {{ i }}</a>"
    " — {{ 'a fine thing' | capitalize }} picked for you in {{ customer.city | default: 'your town' }}.</p>"
    "{% endfor %}"
    "<p><a href='https://shop.example.com/basket'>Back to your basket</a></p>"
    "<p style='font-size:11px'>" + "Footer text about the shop and its address. " * 20 + "</p>"
    "<p><a href='{{ unsubscribe_url }}'>Unsubscribe</a> · <a href='{{ preferences_url }}'>Preferences</a></p>"
    "</td></tr></table></body></html>"
)
TEXT = "Hi {{ customer.first_name | default: 'there' }}, your {{ event.product }} is waiting: https://shop.example.com/basket"


@dataclass
class SendOptions:
    database: str = "sqlite"
    messages: int = 20_000
    workers: int = 1
    connections: int = 3
    batch: int = 200
    dkim: bool = False
    sink: str = "lean"
    pipeline: bool = True  # also the whole outbox path (slower: minutes for 10,000 messages)

    def validate(self) -> None:
        if self.sink not in SINKS:
            raise Invalid(f"--sink: one of {', '.join(SINKS)}")
        if not 1 <= self.messages <= 5_000_000:
            raise Invalid("--messages: between 1 and 5,000,000")
        if not 1 <= self.workers <= 16:
            raise Invalid("--workers: between 1 and 16")
        if not 1 <= self.connections <= 16:
            raise Invalid("--connections: between 1 and 16")


@dataclass
class SendFigures:
    engine: str
    messages: int
    workers: int
    sink: str = "lean"
    pipeline: bool = True
    plan_per_second: float = 0.0
    handoff_per_second: float = 0.0
    handoff_connections: int = 0
    pipeline_per_second: float = 0.0
    pipeline_seconds: float = 0.0
    sent: int = 0
    received: int = 0
    distinct_message_ids: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        expected = self.messages * (2 if self.pipeline else 1)
        pipeline_ok = self.sent == self.messages or not self.pipeline
        return pipeline_ok and self.received == self.distinct_message_ids == expected

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dkim_settings() -> dict[str, str]:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return {
        "domain": "shop.example.com",
        "selector": "bench",
        "private_key": base64.b64encode(raw).decode(),
        "algorithm": "ed25519-sha256",
    }


def _seed(url: str, workspace_id: str, count: int, phase: Phase) -> list[str]:
    """Customers with an email address, written in bulk (the bench is about sending)."""
    from shopkeeper.customers.models import Customer, Identity
    from shopkeeper.db.session import Database
    from shopkeeper.ids import new_id

    db = Database(url)
    now = clock.now()
    ids: list[str] = []
    advance = phase("customers", count)
    try:
        for start in range(0, count, 5000):
            customers, identities = [], []
            for n in range(start, min(count, start + 5000)):
                cid = new_id("cus")
                ids.append(cid)
                traits = {"first_name": f"Customer{n}", "city": "Lyon", "email": f"c{n}@example.com"}
                customers.append(
                    {"id": cid, "workspace_id": workspace_id, "traits": traits, "created_at": now, "updated_at": now}
                )
                identities.append(
                    {
                        "id": new_id("idn"),
                        "workspace_id": workspace_id,
                        "kind": "email",
                        "value": f"c{n}@example.com",
                        "customer_id": cid,
                        "source": "bench",
                        "created_at": now,
                    }
                )
            with db.session(write=True) as session:
                session.execute(insert(Customer), customers)
                session.execute(insert(Identity), identities)
            advance(len(customers))
    finally:
        db.dispose()
    return ids


def _plan(url: str, workspace_id: str, customer_ids: list[str], phase: Phase) -> float:
    from shopkeeper.db.session import Database
    from shopkeeper.messaging.send_service import enqueue

    db = Database(url)
    advance = phase("plan sends", len(customer_ids))
    started = time.perf_counter()
    try:
        for start in range(0, len(customer_ids), 1000):
            chunk = customer_ids[start : start + 1000]
            with db.session(write=True) as session:
                for n, cid in enumerate(chunk, start):
                    enqueue(
                        session,
                        workspace_id,
                        customer_id=cid,
                        channel="email",
                        template="basket",
                        data={"event": {"product": f"Lamp {n % 50}", "price": "€49"}},
                        idempotency_key=f"basket-{cid}",
                        now=clock.now(),
                    )
            advance(len(chunk))
    finally:
        db.dispose()
    return len(customer_ids) / (time.perf_counter() - started)


def _worker(url: str, batch: int) -> None:
    from shopkeeper.db.session import Database
    from shopkeeper.messaging.pipeline import DeliveryWorker

    db = Database(url)
    worker = DeliveryWorker(db, batch=batch, base_url="https://shop.example.com")
    try:
        idle = 0
        while idle < 3:
            report = worker.run_once()
            idle = idle + 1 if report.claimed == 0 else 0
            if report.claimed == 0:
                time.sleep(0.05)
    finally:
        worker.pool.close()
        db.dispose()


def _pipeline(url: str, options: SendOptions, phase: Phase) -> tuple[float, int]:
    from shopkeeper.db.session import Database
    from shopkeeper.messaging.models import Send

    db = Database(url)
    advance = phase("deliver", options.messages)
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    processes = [context.Process(target=_worker, args=(url, options.batch)) for _ in range(options.workers)]
    for process in processes:
        process.start()
    done = 0
    try:
        while done < options.messages and any(p.is_alive() for p in processes):
            time.sleep(0.2)
            with db.session() as session:
                now_done = int(session.scalar(select(func.count()).select_from(Send).where(Send.stage == "done")) or 0)
            advance(now_done - done)
            done = now_done
        elapsed = time.perf_counter() - started
        for process in processes:
            process.join(timeout=60)
        with db.session() as session:
            sent = int(session.scalar(select(func.count()).select_from(Send).where(Send.status == "sent")) or 0)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
        db.dispose()
    return elapsed, sent


def _handoff_process(
    workspace_id: str,
    secret: str,
    settings: dict[str, Any],
    index: int,
    count: int,
    ready: Any,
    go: Any,
    progress: Any,
) -> None:
    """One sending process: its own compiled template and SMTP connection, as each
    `shopkeeper worker` process has. Waits for `go` so that start-up is not timed."""
    from shopkeeper.channels.base import OutboundMessage
    from shopkeeper.channels.email.smtp import SmtpProvider
    from shopkeeper.messaging.templates import compile_content
    from shopkeeper.messaging.tracking import add_tracking

    compiled = compile_content({"email": {"subject": SUBJECT, "html": HTML, "text": TEXT}})
    provider = SmtpProvider(settings)
    ready.release()
    go.wait()
    try:
        for n in range(count):
            send_id = f"snd_bench_{index}_{n}"
            context = {
                "customer": {"first_name": f"Customer{n}", "city": "Lyon"},
                "event": {"product": f"Lamp {n % 50}", "price": "€49"},
                "unsubscribe_url": f"https://shop.example.com/unsubscribe/{send_id}",
                "preferences_url": f"https://shop.example.com/preferences/{send_id}",
            }
            content = compiled.render("email", context)
            content["html"] = add_tracking(
                content["html"],
                base_url="https://shop.example.com",
                workspace_id=workspace_id,
                secret=secret,
                send_id=send_id,
            )
            message = OutboundMessage(
                send_id, workspace_id, "cus", "email", "marketing", f"c{n}@example.com", content, send_id
            )
            provider.send(message)
            if n % 200 == 199:
                progress.put(200)
        progress.put(count % 200)
    finally:
        provider.close()


def _handoff(url: str, workspace_id: str, options: SendOptions, port: int, phase: Phase) -> float:
    """Render + tracking + MIME (+ DKIM) + SMTP hand-off in `connections` processes (one SMTP
    connection each), no database."""
    from shopkeeper.auth.models import Workspace
    from shopkeeper.db.session import Database

    db = Database(url)
    with db.session() as session:
        workspace = session.get(Workspace, workspace_id)
        assert workspace is not None
        secret = workspace.signing_secret
    db.dispose()
    settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "from_email": "news@shop.example.com"}
    if options.dkim:
        settings["dkim"] = _dkim_settings()
    advance = phase("render + hand-off", options.messages)
    shares = [options.messages // options.connections] * options.connections
    shares[0] += options.messages - sum(shares)
    context = multiprocessing.get_context("spawn")
    ready, go, progress = context.Semaphore(0), context.Event(), context.Queue()
    processes = [
        context.Process(
            target=_handoff_process, args=(workspace_id, secret, settings, index, count, ready, go, progress)
        )
        for index, count in enumerate(shares)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            if not ready.acquire(timeout=120):
                raise Invalid("a sending process did not start")
        started = time.perf_counter()
        go.set()
        done = 0
        while done < options.messages:
            if not any(p.is_alive() for p in processes) and progress.empty():
                raise Invalid("a sending process stopped before it had sent its share")
            try:
                step = progress.get(timeout=1)
            except queue.Empty:
                continue
            advance(step)
            done += step
        elapsed = time.perf_counter() - started
        for process in processes:
            process.join(timeout=60)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    return options.messages / elapsed


def run_send_bench(options: SendOptions, phase: Phase) -> SendFigures:
    from shopkeeper.db.session import Database
    from shopkeeper.messaging import provider_service, template_service

    options.validate()
    with (
        tempfile.TemporaryDirectory(prefix="shopkeeper-bench-send-") as tmp,
        fresh_database(options.database, Path(tmp)) as bench_db,
    ):
        figures = SendFigures(bench_db.engine, options.messages, options.workers, options.sink, options.pipeline)
        port = free_port()
        count_file = Path(tmp) / "sink.count"
        sink = subprocess.Popen(
            [sys.executable, "-m", "shopkeeper.bench.smtp_sink", str(port), str(count_file), options.sink],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert sink.stdout is not None
            if sink.stdout.readline().strip() != b"ready":
                raise Invalid("the SMTP sink did not start")
            workspace = provision(bench_db.url)
            customer_ids = _seed(bench_db.url, workspace.id, options.messages, phase)
            db = Database(bench_db.url)
            with db.session(write=True) as session:
                template_service.create_template(
                    session,
                    workspace.id,
                    key="basket",
                    name="Basket",
                    kind="transactional",
                    topic=None,
                    content={"email": {"subject": SUBJECT, "html": HTML, "text": TEXT}},
                    actor="bench",
                    now=clock.now(),
                )
                settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "from_email": "news@shop.example.com"}
                if options.dkim:
                    settings["dkim"] = _dkim_settings()
                provider_service.create_provider(
                    session,
                    workspace.id,
                    {"channel": "email", "name": "sink", "type": "smtp", "settings": settings, "cost_per_unit": 0.0001},
                    clock.now(),
                )
            db.dispose()
            figures.handoff_per_second = _handoff(bench_db.url, workspace.id, options, port, phase)
            figures.handoff_connections = options.connections
            if options.pipeline:
                figures.plan_per_second = _plan(bench_db.url, workspace.id, customer_ids, phase)
                elapsed, figures.sent = _pipeline(bench_db.url, options, phase)
                figures.pipeline_seconds = elapsed
                figures.pipeline_per_second = options.messages / elapsed if elapsed else 0.0
        finally:
            sink.terminate()
            sink.wait(timeout=30)
        if count_file.exists():
            received, distinct = count_file.read_text().split()
            figures.received, figures.distinct_message_ids = int(received), int(distinct)
        if figures.received != figures.distinct_message_ids:
            figures.notes.append("the sink saw a Message-ID twice: a duplicate send")
        return figures


def render_send(figures: SendFigures, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"bench send — {figures.engine}, {figures.messages:,} messages, {figures.sink} sink")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row(
        f"render + hand-off ({figures.handoff_connections} processes, one SMTP connection each)",
        f"{figures.handoff_per_second:,.0f} msg/s",
    )
    if figures.pipeline:
        table.add_row("plan (outbox rows)", f"{figures.plan_per_second:,.0f} sends/s")
        table.add_row(
            f"pipeline, {figures.workers} worker process(es)",
            f"{figures.pipeline_per_second:,.0f} msg/s ({figures.pipeline_seconds:.1f} s)",
        )
    table.add_row(
        "sent / received by the sink / distinct Message-IDs",
        f"{figures.sent} / {figures.received} / {figures.distinct_message_ids}",
    )
    console.print(table)
    for note in figures.notes:
        console.print(f"note: {note}")
