"""The `shopkeeper segments …` commands and `shopkeeper bench segments` (registered in cli.py).

Imports happen inside the commands so that `shopkeeper --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

segments_app = typer.Typer(help="Segments and scores.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=2)


@segments_app.command("refresh")
def refresh(
    workspace: Annotated[str | None, typer.Option(help="workspace id or slug (default: every workspace)")] = None,
    segment: Annotated[
        list[str] | None, typer.Option(help="segment key, repeatable (default: every live segment)")
    ] = None,
) -> None:
    """Re-evaluate segments where the data lives and record who entered and left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy import select

    from shopkeeper import clock
    from shopkeeper.auth.models import Workspace
    from shopkeeper.auth.service import find_workspace
    from shopkeeper.cli import _migrated
    from shopkeeper.errors import ShopkeeperError
    from shopkeeper.segments import service

    try:
        db = _migrated()
        with db.session() as session:
            if workspace is not None:
                workspaces = [find_workspace(session, workspace).id]
            else:
                workspaces = list(session.scalars(select(Workspace.id).order_by(Workspace.created_at)))
            if segment and workspace is None:
                raise _fail("--segment needs --workspace")
            totals = {ws: len(service.active_segments(session, ws)) for ws in workspaces}
        now = clock.now()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        results = []
        with Progress(*columns, console=err, transient=True) as progress:
            for ws in workspaces:
                task = progress.add_task(f"refreshing {ws}", total=len(segment) if segment else totals[ws])
                results += service.refresh_workspace(
                    db,
                    ws,
                    now,
                    keys=segment,
                    on_done=lambda _r, t=task: progress.advance(t),  # type: ignore[misc]
                )
    except ShopkeeperError as exc:
        raise _fail(exc.message) from None
    for r in results:
        console.print(
            f"{r.key:<32} {r.members:>10,} members  +{r.entered:,} −{r.exited:,}  {r.seconds:.2f} s", highlight=False
        )
    console.print(f"{len(results)} segment(s) refreshed")


@segments_app.command("scores")
def scores(
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
) -> None:
    """Compute RFM, CLV (BG/NBD + Gamma-Gamma), churn risk, NPS and CSAT for a workspace."""
    from shopkeeper import clock
    from shopkeeper.auth.service import find_workspace
    from shopkeeper.cli import _migrated
    from shopkeeper.errors import ShopkeeperError
    from shopkeeper.segments.scores import run

    try:
        db = _migrated()
        with db.session() as session:
            ws = find_workspace(session, workspace).id
        with err.status("fitting models and scoring customers…"):
            report = run.compute_all(db, ws, clock.now())
    except ShopkeeperError as exc:
        raise _fail(exc.message) from None
    for line in report.lines():
        console.print(line, highlight=False)


def bench_segments(
    engine: Annotated[str, typer.Option(help="sqlite, postgresql or duckdb")] = "sqlite",
    customers: Annotated[int, typer.Option(help="customers generated")] = 1_000_000,
    events: Annotated[int, typer.Option(help="events generated")] = 10_000_000,
    incremental: Annotated[int, typer.Option(help="events evaluated one by one for the latency")] = 1000,
    database_url: Annotated[
        str, typer.Option(help="PostgreSQL server for --engine postgresql (a fresh database is made next to it)")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    workdir: Annotated[Path | None, typer.Option(help="where the temporary SQLite/DuckDB files go")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="also write every figure to this file")] = None,
) -> None:
    """Segment refresh and real-time evaluation at scale (SPEC §11: < 2 s per segment, < 1 ms per event)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shopkeeper.bench.segments import SegmentBenchOptions, render, run_segments_bench, write_json
    from shopkeeper.errors import ShopkeeperError

    options = SegmentBenchOptions(engine, customers, events, incremental, database_url, workdir)
    try:
        options.validate()
    except ShopkeeperError as exc:
        raise _fail(exc.message) from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, refresh_per_second=4) as progress:

        def phase(name: str, total: int):  # type: ignore[no-untyped-def]
            task = progress.add_task(name, total=total)
            return lambda n: progress.advance(task, n)

        try:
            figures = run_segments_bench(options, phase=phase)
        except ShopkeeperError as exc:
            raise _fail(exc.message) from None
    render(figures, console)
    if json_path is not None:
        write_json(figures, json_path)
        console.print(f"figures written to {json_path}")
