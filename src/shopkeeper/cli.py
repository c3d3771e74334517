"""The `shopkeeper` command: serve, db, workspace, key, user, demo, import, bench."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from shopkeeper import clock
from shopkeeper.config import get_settings
from shopkeeper.errors import ShopkeeperError

if TYPE_CHECKING:  # imported lazily at run time to keep `--help` fast
    from shopkeeper.auth.principal import Principal
    from shopkeeper.db.session import Database

app = typer.Typer(help="Shopkeeper: customer profiles, conversations and journeys.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
user_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
import_app = typer.Typer(help="Bulk import of events (JSONL) and customers (CSV).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(workspace_app, name="workspace")
app.add_typer(key_app, name="key")
app.add_typer(user_app, name="user")
app.add_typer(import_app, name="import")
bench_app = typer.Typer(help="Benchmarks against a real server (SPEC §11).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
suppression_app = typer.Typer(help="The suppression list: addresses never to contact.", no_args_is_help=True)
app.add_typer(suppression_app, name="suppression")
customer_app = typer.Typer(help="One customer's data: GDPR export and erasure.", no_args_is_help=True)
app.add_typer(customer_app, name="customer")
push_app = typer.Typer(help="Web Push helpers.", no_args_is_help=True)
app.add_typer(push_app, name="push")

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Bad input ends with one line naming what was wrong, never a traceback."""
    try:
        yield
    except ShopkeeperError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(code=2) from None


def _database() -> Database:
    from shopkeeper.db.session import Database

    settings = get_settings()
    return Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)


def _migrated() -> Database:
    from shopkeeper.db.migrate import upgrade

    upgrade(get_settings().database_url)
    return _database()


def _run(fn: Callable[[], T]) -> T:
    with _clear_errors():
        return fn()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="server processes (each with its own ingest writer)")
    ] = None,
) -> None:
    """Run the API (and, in embedded mode, everything else) in this process."""
    import uvicorn

    settings = get_settings()
    count = workers or settings.workers
    if settings.should_auto_migrate:
        # Once, before any worker starts, so that several workers never race to migrate.
        from shopkeeper.db.migrate import upgrade

        upgrade(settings.database_url)
    uvicorn.run(
        "shopkeeper.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=count,
        log_level=settings.log_level,
        loop="uvloop",
        http="httptools",
        access_log=False,
        # Agents' live streams never end by themselves: a stop or restart ends them after this
        # long (the browser's EventSource reconnects and resumes from Last-Event-ID).
        timeout_graceful_shutdown=3,
    )


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="deliver what is due now, then exit")] = False,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="sends claimed per round")] = 100,
    lease_seconds: Annotated[
        int, typer.Option(min=1, max=86_400, help="how long a claim holds before another worker may recover it")
    ] = 300,
) -> None:
    """Deliver planned sends, triage the inbox and run journeys (any number of workers can run
    side by side on PostgreSQL)."""
    import signal
    import threading
    from datetime import timedelta

    from shopkeeper.db.session import Database
    from shopkeeper.messaging.pipeline import DeliveryWorker

    settings = get_settings()
    database = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    delivery = DeliveryWorker(
        database, batch=batch, base_url=settings.public_url, lease=timedelta(seconds=lease_seconds)
    )
    from shopkeeper.channels.chat.relay import notify_through
    from shopkeeper.inbox.triage import InboxWorker

    notify_through(database)  # PostgreSQL: chat messages reach the servers' sockets at once
    inbox = InboxWorker(database)
    from shopkeeper.journeys import optimiser  # noqa: F401 - learns from auto-chosen sends' outcomes
    from shopkeeper.journeys.worker import JourneyWorker

    journeys = JourneyWorker(database)
    try:
        if once:
            steps = journeys.drain()
            triage = inbox.drain()
            report = delivery.drain()
            console.print(
                f"claimed {report.claimed}: sent {report.sent}, delayed {report.delayed}, "
                f"refused {report.refused}, retried {report.retried}, failed {report.failed}; "
                f"inbox: classified {triage.classified}, routed {triage.routed}, "
                f"SLA breaches {triage.breached}; journeys: entered {steps.entered}, "
                f"steps {steps.steps}, broadcast {steps.broadcast}"
            )
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        delivery.start()
        inbox.start()
        journeys.start()
        console.print(f"worker {delivery.holder} delivering, triaging the inbox, running journeys; Ctrl-C to stop")
        stop.wait()
        journeys.stop()
        delivery.stop()
        inbox.stop()
    finally:
        delivery.pool.close()
        database.dispose()


@app.command("inbound-smtp")
def inbound_smtp(
    host: Annotated[str | None, typer.Option(help="interface to listen on (0.0.0.0 for an MX)")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="TCP port (25 for an MX)")] = None,
) -> None:
    """Receive email: replies, bounces (DSN) and complaints (ARF) for the workspaces' addresses."""
    import signal
    import ssl
    import threading

    from shopkeeper.channels.email.inbound import InboundSmtpServer
    from shopkeeper.inbox import hooks  # noqa: F401 - replies join conversations
    from shopkeeper.journeys import optimiser  # noqa: F401 - bounces and complaints teach the channel optimiser

    settings = get_settings()
    database = _database()
    configured = settings.inbound_smtp_port
    chosen = port if port is not None else (configured if configured is not None else 2525)
    try:
        server = InboundSmtpServer.from_settings(database, settings, host=host, port=chosen)
    except (OSError, ssl.SSLError) as exc:
        err.print(f"[red]error:[/red] cannot load the TLS certificate or key: {exc}", highlight=False)
        database.dispose()
        raise typer.Exit(code=2) from None
    try:
        server.start()
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot listen on {server.host}:{chosen}: {exc.strerror}", highlight=False)
        database.dispose()
        raise typer.Exit(code=2) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(f"receiving email on {server.host}:{server.port}; Ctrl-C to stop", highlight=False)
    try:
        stop.wait()
    finally:
        server.stop()
        database.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from shopkeeper.db.migrate import current, upgrade

    url = get_settings().database_url
    upgrade(url)
    console.print(f"database at revision {current(url)}")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="same seed and options, same shop (and same messageIds)")] = 42,
    customers: Annotated[int, typer.Option(help="named customers; anonymous visitors come on top")] = 10_000,
    events: Annotated[int, typer.Option(help="page and track events; identify calls come on top")] = 200_000,
    until: Annotated[
        str | None, typer.Option(help="the data covers the 12 months before this day, YYYY-MM-DD [default: today]")
    ] = None,
    workspace_name: Annotated[str, typer.Option(help="the demo's workspace (found again by its slug)")] = "Demo Shop",
    if_empty: Annotated[bool, typer.Option("--if-empty", help="do nothing if the demo's workspace exists")] = False,
) -> None:
    """Load a realistic synthetic shop: a year of visits, orders and sign-ups, through real ingestion.

    The same options give the same events and messageIds, so a second run stores nothing new.
    """
    import time
    from datetime import date, timedelta

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shopkeeper.auth.service import slugify
    from shopkeeper.demo.generator import DemoOptions, DemoShop
    from shopkeeper.demo.load import check_same_demo, find_workspace, open_workspace, write_shop
    from shopkeeper.errors import Invalid

    def go() -> None:
        try:
            day = date.fromisoformat(until) if until is not None else clock.now().date()
        except ValueError:
            raise Invalid(f"--until: {until!r} is not a date such as 2026-03-01", field="until") from None
        if not 1 <= len(workspace_name.strip()) <= 200:
            raise Invalid("--workspace-name: must be 1 to 200 characters", field="workspace_name")
        options = DemoOptions(until=day, seed=seed, customers=customers, events=events)
        options.validate()
        db = _migrated()
        if if_empty and find_workspace(db, workspace_name) is not None:
            console.print(f"workspace {slugify(workspace_name)!r} exists already: demo not loaded (--if-empty)")
            return
        started = time.perf_counter()
        with err.status("planning the shop…"):
            shop = DemoShop.build(options)
        workspace = open_workspace(db, workspace_name, clock.now())
        if not workspace.created:
            check_same_demo(db, workspace.id, shop)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True, refresh_per_second=4) as progress:
            task = progress.add_task("writing events", total=shop.event_count)
            stats = write_shop(db, workspace.id, shop, on_progress=lambda n: progress.advance(task, n))
        from shopkeeper.demo.extras import add_extras

        with err.status("topics, templates, segments, scores, journeys, customers writing in…"):
            extras = add_extras(db, workspace.id, clock.now())
        seconds = time.perf_counter() - started
        last_day = shop.window.end - timedelta(days=1)
        console.print(
            f"{customers:,} customers and {len(shop.visitors):,} anonymous visitors, "
            f"{shop.window.start:%Y-%m-%d} to {last_day:%Y-%m-%d}",
            highlight=False,
        )
        console.print(
            f"events     {stats.generated:,} ({options.events:,} page and track, "
            f"{shop.event_count - options.events:,} identify)",
            highlight=False,
        )
        console.print(f"stored     {stats.stored:,} new, {stats.duplicates:,} already there, in {seconds:.1f} s")
        console.print(
            f"segments   {', '.join(extras.segments)}; scores for {extras.scored:,} buyers; "
            f"journeys {', '.join(extras.journeys) or 'as before'}; {extras.messages} customers wrote in",
            highlight=False,
        )
        console.print(f"workspace  {workspace.id}  ({workspace.slug})", highlight=False)
        if workspace.created:
            console.print(f"write key  {workspace.write_key}", highlight=False)
            console.print(f"secret key {workspace.secret_key}", highlight=False)
            console.print("[dim]Keys are stored hashed; copy them now.[/dim]")
            from shopkeeper.demo.load import DEMO_EMAIL, DEMO_PASSWORD

            console.print(f"web UI     log in as {DEMO_EMAIL} / {DEMO_PASSWORD}", highlight=False)
        else:
            hint = f"shopkeeper key create {workspace.slug}"
            console.print(f"[dim]Keys were shown when it was made; for new ones: {hint}[/dim]", highlight=False)

    _run(go)


def _import(path: Path, workspace: str, kind: str) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from shopkeeper.auth.service import find_workspace
    from shopkeeper.errors import Invalid
    from shopkeeper.events.importer import csv_customers, import_messages, jsonl_messages

    def go() -> None:
        if not path.is_file():
            raise Invalid(f"{path}: no such file", field="path")
        db = _migrated()
        with db.session() as session:
            ws = find_workspace(session, workspace)
        reader = jsonl_messages(path) if kind == "events" else csv_customers(path)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,} lines"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task(f"importing {path.name}", total=None)
            report = import_messages(db, ws.id, reader, progress=lambda n: progress.advance(task, n))
        console.print(
            f"{report.lines:,} lines: {report.stored:,} stored, {report.duplicates:,} already there, "
            f"{report.rejected:,} rejected",
            highlight=False,
        )
        for number, message in report.errors[:20]:
            err.print(f"line {number}: {message}", highlight=False)
        if report.rejected > 20:
            err.print(f"… and {report.rejected - 20:,} more rejected lines", highlight=False)
        if report.rejected:
            raise typer.Exit(code=2)

    _run(go)


@import_app.command("events")
def import_events(
    path: Annotated[Path, typer.Argument(help="JSONL file: one Segment message (with its type) per line")],
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
) -> None:
    """Import events; bad lines are reported by number while the good ones are stored."""
    _import(path, workspace, "events")


@import_app.command("customers")
def import_customers(
    path: Annotated[
        Path, typer.Argument(help="CSV with a header row; user_id/anonymous_id identify, other columns are traits")
    ],
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
) -> None:
    """Import customer profiles (each row is an identify call)."""
    _import(path, workspace, "customers")


@workspace_app.command("create")
def workspace_create(
    name: str,
    slug: Annotated[str | None, typer.Option(help="short name used by the CLI (default: from NAME)")] = None,
) -> None:
    """Create a workspace and print its write and secret keys (shown only once)."""
    from shopkeeper.auth.service import create_workspace

    def go() -> None:
        db = _migrated()
        with db.session(write=True) as session:
            ws, write_key, secret_key = create_workspace(session, name, clock.now(), slug=slug)
        console.print(f"workspace  {ws.id}  ({ws.slug})")
        console.print(f"write key  {write_key}")
        console.print(f"secret key {secret_key}")
        console.print("[dim]Keys are stored hashed; copy them now.[/dim]")

    _run(go)


@workspace_app.command("list")
def workspace_list() -> None:
    """List workspaces."""
    from sqlalchemy import select

    from shopkeeper.auth.models import Workspace

    db = _migrated()
    with db.session() as session:
        for ws in session.scalars(select(Workspace).order_by(Workspace.created_at)):
            console.print(f"{ws.id}  {ws.slug:<24} {ws.name}", highlight=False)


@key_app.command("create")
def key_create(
    workspace: Annotated[str, typer.Argument(help="workspace id or slug")],
    kind: Annotated[str, typer.Option(help="write (ingestion) or secret (admin API)")] = "secret",
    name: Annotated[str, typer.Option(help="a label to recognise the key by")] = "",
) -> None:
    """Create an API key and print it (shown only once)."""
    from shopkeeper.auth.service import create_api_key, find_workspace

    def go() -> None:
        db = _migrated()
        with db.session(write=True) as session:
            ws = find_workspace(session, workspace)
            row, plain = create_api_key(session, ws.id, kind, name or kind, clock.now())
        console.print(f"{row.kind} key {row.id}: {plain}")

    _run(go)


@key_app.command("revoke")
def key_revoke(workspace: str, key_id: str) -> None:
    """Revoke an API key."""
    from shopkeeper.auth.service import find_workspace, revoke_api_key

    def go() -> None:
        db = _migrated()
        with db.session(write=True) as session:
            ws = find_workspace(session, workspace)
            revoke_api_key(session, ws.id, key_id, clock.now())
        console.print(f"revoked {key_id}")

    _run(go)


@user_app.command("create")
def user_create(
    workspace: Annotated[str, typer.Argument(help="workspace id or slug")],
    email: Annotated[str, typer.Option(help="login email")],
    role: Annotated[str, typer.Option(help="owner, admin, marketer, agent or viewer")] = "agent",
    name: Annotated[str, typer.Option()] = "",
    password: Annotated[str | None, typer.Option(help="at least 10 characters; prompted if omitted")] = None,
) -> None:
    """Add a user to a workspace."""
    from shopkeeper.auth.service import create_user, find_workspace

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)

    def go() -> None:
        db = _migrated()
        with db.session(write=True) as session:
            ws = find_workspace(session, workspace)
            user = create_user(session, ws.id, email=email, role=role, name=name, password=password, now=clock.now())
        console.print(f"user {user.id} {user.email} ({user.role})")

    _run(go)


@bench_app.command("ingest")
def bench_ingest(
    database_url: Annotated[
        str,
        typer.Option(
            help="`sqlite` (a temporary file), a sqlite:/// URL, or a PostgreSQL URL: a fresh database "
            "is made next to it and dropped afterwards; with --target, the target's database (for the checks)"
        ),
    ] = "sqlite",
    target: Annotated[str | None, typer.Option(help="a running server, e.g. http://127.0.0.1:8000")] = None,
    write_key: Annotated[str | None, typer.Option(help="the write key for --target")] = None,
    events: Annotated[int, typer.Option(help="events sent through /v1/batch")] = 200_000,
    batch_size: Annotated[int, typer.Option(help="events per /v1/batch request")] = 100,
    concurrency: Annotated[int, typer.Option(help="concurrent keep-alive connections for /v1/batch")] = 8,
    track_requests: Annotated[int, typer.Option(help="single /v1/track requests per latency run")] = 2000,
    track_senders: Annotated[int, typer.Option(help="concurrent senders in the second latency run")] = 4,
    people: Annotated[int, typer.Option(help="distinct visitors the events come from")] = 50_000,
    client: Annotated[str, typer.Option(help="HTTP client: raw (asyncio streams, cheapest) or httpx")] = "raw",
    json_path: Annotated[Path | None, typer.Option("--json", help="also write every figure to this file")] = None,
) -> None:
    """Durable ingestion over real HTTP: events/s through /v1/batch, then /v1/track latency."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shopkeeper.bench.client import CLIENT_KINDS
    from shopkeeper.bench.ingest import IngestOptions, run_ingest_bench
    from shopkeeper.bench.report import render, write_json

    if client not in CLIENT_KINDS:
        err.print(f"[red]error:[/red] --client: must be one of {', '.join(CLIENT_KINDS)}", highlight=False)
        raise typer.Exit(code=2)
    options = IngestOptions(
        database=database_url if (target is None or database_url != "sqlite") else None,
        target=target,
        write_key=write_key,
        events=events,
        batch_size=batch_size,
        concurrency=concurrency,
        track_requests=track_requests,
        track_senders=track_senders,
        people=people,
        client=client,
    )
    _run(options.validate)
    if json_path is not None and not json_path.parent.is_dir():
        err.print(f"[red]error:[/red] --json: directory {json_path.parent} does not exist", highlight=False)
        raise typer.Exit(code=2)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, refresh_per_second=4) as progress:

        def phase(name: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(name, total=total)
            return lambda n: progress.advance(task, n)

        figures = _run(lambda: run_ingest_bench(options, phase=phase))
    render(figures, console)
    if json_path is not None:
        write_json(figures, json_path)
        console.print(f"figures written to {json_path}")
    if not figures.ok:
        err.print("[red]error:[/red] requests failed or the stored count does not match", highlight=False)
        raise typer.Exit(code=1)


def _operator(workspace_id: str) -> Principal:
    """Who the audit log names for changes made from the command line (shell access is owner access)."""
    from shopkeeper.auth.principal import Principal

    return Principal(workspace_id=workspace_id, actor="cli", role="owner")


@suppression_app.command("add")
def suppression_add(
    address: Annotated[str, typer.Argument(help="email address, phone number or device token")],
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
    channel: Annotated[str, typer.Option(help="email, sms, whatsapp, voice or push")],
    reason: Annotated[str, typer.Option(help="hard_bounce, complaint, stop or manual")] = "manual",
    note: Annotated[str | None, typer.Option(help="why, for the next person who reads the list")] = None,
) -> None:
    """Suppress an address on a channel (audited); an address suppressed already is left as it is."""
    from shopkeeper.auth.service import find_workspace
    from shopkeeper.privacy.suppressions import add_suppression

    def go() -> None:
        db = _migrated()
        with db.session(write=True) as session:
            ws = find_workspace(session, workspace)
            row, created = add_suppression(
                session, _operator(ws.id), channel=channel, address=address, reason=reason, note=note, now=clock.now()
            )
        state = "suppressed" if created else "already suppressed"
        console.print(f"{state} {row.channel} {row.address or '(erased address)'}: {row.id} ({row.reason})")

    _run(go)


@suppression_app.command("remove")
def suppression_remove(
    ref: Annotated[str, typer.Argument(help="a suppression id (sup_…), or an address together with --channel")],
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
    channel: Annotated[str | None, typer.Option(help="the channel, when REF is an address")] = None,
) -> None:
    """Lift a suppression (audited). Entries made by erasing a customer never lift."""
    from shopkeeper.auth.service import find_workspace
    from shopkeeper.errors import Invalid, NotFound
    from shopkeeper.privacy.suppressions import find_suppression, remove_suppression

    def go() -> None:
        db = _migrated()
        with db.session(write=True) as session:
            ws = find_workspace(session, workspace)
            suppression_id = ref
            if channel is not None:
                found = find_suppression(session, ws.id, channel, ref)
                if found is None:
                    raise NotFound(f"{ref} is not suppressed on {channel}", field="address")
                suppression_id = found.id
            elif not ref.startswith("sup_"):
                raise Invalid(f"{ref!r} is not a suppression id; for an address, add --channel", field="channel")
            row = remove_suppression(session, _operator(ws.id), suppression_id, clock.now())
        console.print(f"lifted {row.id}: {row.channel} {row.address} ({row.reason})", highlight=False)

    _run(go)


@suppression_app.command("list")
def suppression_list(
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
    channel: Annotated[str | None, typer.Option(help="only this channel")] = None,
    reason: Annotated[
        str | None, typer.Option(help="only this reason (hard_bounce, complaint, stop, manual, erased)")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="look an address up (by keyed hash: finds erased entries)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="at most this many, newest first")] = 100,
) -> None:
    """List suppressed addresses, newest first; erased entries show no address."""
    from shopkeeper.auth.service import find_workspace
    from shopkeeper.privacy.suppressions import list_suppressions

    def go() -> None:
        db = _migrated()
        with db.session() as session:
            ws = find_workspace(session, workspace)
            rows = list_suppressions(session, ws.id, channel=channel, reason=reason, address=address, limit=limit)
        for row in rows:
            console.print(
                f"{row.id}  {row.channel:<8} {row.reason:<12} {row.created_at:%Y-%m-%d %H:%M}  "
                f"{row.address or '(erased)'}",
                highlight=False,
            )
        if not rows:
            err.print("no suppression matches")

    _run(go)


@customer_app.command("export")
def customer_export(
    customer_id: Annotated[str, typer.Argument(help="a customer id (a merged-away id finds its survivor)")],
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
    out: Annotated[Path | None, typer.Option("--out", help="write here instead of standard output")] = None,
) -> None:
    """Everything stored about a customer as one JSON document (GDPR), written as it is read."""
    from shopkeeper.auth.service import find_workspace
    from shopkeeper.errors import Invalid
    from shopkeeper.privacy.export import export_chunks, plan_export

    def go() -> None:
        if out is not None and not out.parent.is_dir():
            raise Invalid(f"--out: directory {out.parent} does not exist", field="out")
        db = _migrated()
        now = clock.now()
        with db.session(write=True) as session:
            ws = find_workspace(session, workspace)
            plan = plan_export(session, _operator(ws.id), customer_id, now=now)
        with db.session() as session:
            chunks = export_chunks(session, plan, now=now)
            if out is None:
                for chunk in chunks:
                    sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.write(b"\n")
                sys.stdout.buffer.flush()
                return
            # Written aside and renamed at the end: a failure never leaves half a document at `out`.
            partial = out.with_name(f".{out.name}.partial")
            try:
                with partial.open("wb") as handle:
                    for chunk in chunks:
                        handle.write(chunk)
                partial.replace(out)
            finally:
                partial.unlink(missing_ok=True)
        err.print(f"exported {plan.customer_id} to {out}", highlight=False)

    _run(go)


@customer_app.command("erase")
def customer_erase(
    customer_id: Annotated[str, typer.Argument(help="a customer id (a merged-away id erases its survivor)")],
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
    yes: Annotated[bool, typer.Option("--yes", help="confirm: an erasure cannot be undone")] = False,
) -> None:
    """Erase a customer for good (GDPR): profile, merged profiles, identities, events, consent
    records; their addresses stay suppressed by keyed hash only."""
    from shopkeeper.auth.service import find_workspace
    from shopkeeper.errors import Invalid
    from shopkeeper.privacy.erasure import erase_customer

    def go() -> None:
        if not yes:
            raise Invalid("add --yes to confirm: an erasure cannot be undone", field="yes")
        db = _migrated()
        with db.session(write=True) as session:
            ws = find_workspace(session, workspace)
            erasure = erase_customer(session, _operator(ws.id), customer_id, now=clock.now())
        counts = ", ".join(f"{n} {kind}" for kind, n in erasure.deleted.items() if n)
        console.print(
            f"erased {erasure.customer_id} ({len(erasure.customer_ids)} profile(s)): {counts}; "
            f"{erasure.suppressed_addresses} address suppression(s) kept by keyed hash",
            highlight=False,
        )

    _run(go)


# Segments live in their own module (their commands import their dependencies lazily too).
from shopkeeper.segments.commands import bench_segments, segments_app  # noqa: E402

app.add_typer(segments_app, name="segments")
bench_app.command("segments")(bench_segments)


@bench_app.command("send")
def bench_send(
    database_url: Annotated[
        str, typer.Option(help="`sqlite` (a temporary file) or a PostgreSQL URL (a fresh database next to it)")
    ] = "sqlite",
    messages: Annotated[int, typer.Option(help="emails planned and delivered")] = 20_000,
    workers: Annotated[int, typer.Option(help="delivery worker processes for the pipeline run")] = 1,
    connections: Annotated[
        int, typer.Option(help="sending processes (one SMTP connection each) for the render + hand-off run")
    ] = 3,
    batch: Annotated[int, typer.Option(help="sends a worker claims per round")] = 200,
    dkim: Annotated[bool, typer.Option("--dkim", help="sign every message (ed25519-sha256)")] = False,
    sink: Annotated[
        str, typer.Option(help="the receiving server: `lean` (bench.lean_sink) or `aiosmtpd` (the full server)")
    ] = "lean",
    pipeline: Annotated[
        bool, typer.Option("--pipeline/--no-pipeline", help="also time the whole outbox path (minutes)")
    ] = True,
    json_path: Annotated[Path | None, typer.Option("--json", help="also write every figure to this file")] = None,
) -> None:
    """Outbound email to a real SMTP server on loopback (SPEC §11: render + hand-off ≥ 2,000 msg/s)."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shopkeeper.bench.send import SendOptions, render_send, run_send_bench

    options = SendOptions(database_url, messages, workers, connections, batch, dkim, sink, pipeline)
    _run(options.validate)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, refresh_per_second=4) as progress:

        def phase(name: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(name, total=total)
            return lambda n: progress.advance(task, n)

        figures = _run(lambda: run_send_bench(options, phase))
    render_send(figures, console)
    if json_path is not None:
        json_path.write_text(json.dumps(figures.to_dict(), indent=2))
    if not figures.ok:
        err.print("[red]error:[/red] not every message arrived exactly once", highlight=False)
        raise typer.Exit(code=1)


@bench_app.command("journeys")
def bench_journeys(
    database_url: Annotated[
        str, typer.Option(help="`sqlite` (a temporary file) or a PostgreSQL URL (a fresh database next to it)")
    ] = "sqlite",
    events: Annotated[int, typer.Option(help="/v1/track events for the decision latency")] = 1000,
    rate: Annotated[float, typer.Option(help="events per second, sent at a steady rate")] = 50.0,
    connections: Annotated[int, typer.Option(help="keep-alive connections the events go out on")] = 4,
    runs: Annotated[int, typer.Option(help="runs due at once for the steps/s figure")] = 100_000,
    batch: Annotated[int, typer.Option(help="runs a journeys worker claims per round")] = 500,
    workers: Annotated[int, typer.Option(help="journeys worker processes for the steps/s run")] = 1,
    latency: Annotated[bool, typer.Option("--latency/--no-latency", help="measure event → send decision")] = True,
    steps: Annotated[bool, typer.Option("--steps/--no-steps", help="measure steps/s over --runs runs")] = True,
    seconds: Annotated[
        float, typer.Option(help="stop the steps/s run after this many seconds (0: when every run has moved)")
    ] = 0.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="also write every figure to this file")] = None,
) -> None:
    """Journeys: event → send decision latency through a running server (SPEC §11: p99 < 100 ms),
    and the executor's steps/s with many runs due."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shopkeeper.bench.journeys import JourneyOptions, render_journeys, run_journeys_bench

    options = JourneyOptions(database_url, events, rate, connections, runs, batch, workers, latency, steps, seconds)
    _run(options.validate)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, refresh_per_second=4) as progress:

        def phase(name: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(name, total=total)
            return lambda n: progress.advance(task, n)

        figures = _run(lambda: run_journeys_bench(options, phase))
    render_journeys(figures, console)
    if json_path is not None:
        json_path.write_text(json.dumps(figures.to_dict(), indent=2))
        console.print(f"figures written to {json_path}")
    if not figures.ok:
        err.print("[red]error:[/red] an event got no send, or a run did not reach its wait", highlight=False)
        raise typer.Exit(code=1)


@bench_app.command("classify")
def bench_classify(
    threads: Annotated[int, typer.Option(min=1, max=64, help="onnxruntime threads per call")] = 1,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="messages per call for the throughput run")] = 32,
    rounds: Annotated[int, typer.Option(min=1, max=100, help="passes over the held-out set for the timings")] = 2,
    cv: Annotated[bool, typer.Option("--cv", help="also cross-validate the candidate models on train.jsonl")] = False,
    misses: Annotated[bool, typer.Option("--misses", help="list the held-out intent misses")] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="also write every figure to this file")] = None,
) -> None:
    """The inbox classifier: trained on train.jsonl, measured on heldout.jsonl (accuracy, F1 per
    class, latency, memory)."""
    import json

    from shopkeeper.inbox.classify.evaluate import render, run_classify_bench

    figures = run_classify_bench(threads, batch, rounds, cv, phase=lambda name: err.print(f"{name}…", style="dim"))
    render(figures, console, show_misses=misses)
    if json_path is not None:
        json_path.write_text(json.dumps(figures.to_dict(), indent=2, ensure_ascii=False))
        console.print(f"figures written to {json_path}")


@push_app.command("vapid-keys")
def push_vapid_keys(
    as_json: Annotated[bool, typer.Option("--json", help="print {private_key, public_key} as JSON")] = False,
) -> None:
    """A new VAPID key pair: the private key goes in a `webpush` provider's settings
    (`vapid_private_key`), the public key is the page's applicationServerKey."""
    import json

    from shopkeeper.channels.push.vapid import generate

    private_key, public_key = generate()
    if as_json:
        console.print_json(json.dumps({"private_key": private_key, "public_key": public_key}))
        return
    console.print(f"private key (settings.vapid_private_key): {private_key}", highlight=False)
    console.print(f"public key  (applicationServerKey):       {public_key}", highlight=False)


def main() -> None:  # pragma: no cover - console entry point alias
    sys.exit(app())
