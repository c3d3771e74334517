"""RFM: recency, frequency and monetary quintiles of purchase events, computed in SQL.

Each of R, F and M is 1 (lowest fifth) to 5 (highest; for recency: the most recent buyers), by
rank among the workspace's buyers so that ties share a score: score = 1 + ⌊5·(rank−1)/n⌋. Scores
kept: `rfm_r`, `rfm_f`, `rfm_m`, `rfm` (= 100·R + 10·F + M, e.g. 545) and `rfm_segment`, a
label from R and F: champions, loyal, new, cant_lose, at_risk, hibernating, needs_attention.
Customers with no purchase get no RFM score.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, String, case, cast, func, insert, literal, select
from sqlalchemy.orm import Session

from shopkeeper.segments.compiler import customers, events
from shopkeeper.segments.dialect import group_key, json_number
from shopkeeper.segments.scores import store

NAMES = ("rfm_r", "rfm_f", "rfm_m", "rfm", "rfm_segment")


def _quintile(rank: Any, total: Any) -> Any:
    return cast(func.floor(5.0 * (rank - 1) / total), Integer) + 1


def segment_label(r: Any, f: Any) -> Any:
    return case(
        ((r >= 4) & (f >= 4), "champions"),
        ((r >= 3) & (f >= 3), "loyal"),
        ((r >= 4) & (f <= 2), "new"),
        ((r <= 2) & (f >= 4), "cant_lose"),
        ((r <= 2) & (f >= 3), "at_risk"),
        (r <= 2, "hibernating"),
        else_="needs_attention",
    )


def compute(
    session: Session,
    workspace_id: str,
    now: datetime,
    *,
    purchase_event: str = store.PURCHASE_EVENT,
    amount_property: str = store.AMOUNT_PROPERTY,
) -> int:
    """Replace the workspace's RFM scores; returns how many customers got one."""
    amount = func.coalesce(json_number(events.c.properties, amount_property), 0.0)
    buyers = (
        select(
            events.c.customer_id.label("customer_id"),
            func.max(events.c.timestamp).label("last_at"),
            func.count().label("n"),
            func.sum(amount).label("amount"),
        )
        .where(
            events.c.workspace_id == workspace_id,
            events.c.name == purchase_event,
            # Events of a profile merged away are re-pointed to the survivor by the merge.
            events.c.customer_id.in_(
                select(customers.c.id).where(
                    customers.c.workspace_id == workspace_id, customers.c.merged_into.is_(None)
                )
            ),
        )
        .group_by(group_key(events.c.customer_id))
        .subquery("buyers")
    )
    total = func.count().over()
    ranked_select = select(
        buyers.c.customer_id,
        _quintile(func.rank().over(order_by=buyers.c.last_at), total).label("r"),
        _quintile(func.rank().over(order_by=buyers.c.n), total).label("f"),
        _quintile(func.rank().over(order_by=buyers.c.amount), total).label("m"),
    )
    store.replace(session, workspace_id, NAMES)
    # Ranked once into a temporary table, then written once per score name.
    work = store.scratch(session, "rfm_work", r="INTEGER", f="INTEGER", m="INTEGER")
    session.execute(insert(work).from_select(["customer_id", "r", "f", "m"], ranked_select))
    ranked = work
    r, f, m = ranked.c.r, ranked.c.f, ranked.c.m
    label = segment_label(r, f)
    null_text = literal(None, String())
    null_number = literal(None, Float())
    ws = literal(workspace_id, String())
    at = literal(now, events.c.timestamp.type)
    for name, value, text in (
        ("rfm_r", cast(r, Float), null_text),
        ("rfm_f", cast(f, Float), null_text),
        ("rfm_m", cast(m, Float), null_text),
        ("rfm", cast(r * 100 + f * 10 + m, Float), null_text),
        ("rfm_segment", null_number, label),
    ):
        store.insert_from(session, select(ranked.c.customer_id, literal(name, String()), ws, value, text, at))
    count = int(session.scalar(select(func.count()).select_from(work)) or 0)
    store.drop_scratch(session, work)
    store.record_run(
        session,
        workspace_id,
        "rfm",
        {"purchase_event": purchase_event, "amount_property": amount_property},
        {"buyers": count},
        count,
        now,
    )
    return count
