"""Customer lifetime value, probability alive and churn risk from purchase events.

1. A purchase summary per customer, from the events in SQL: purchases are counted by day (two
   orders on one day are one transaction, as in the BG/NBD papers); `x` = days with a purchase
   − 1, `t_x` = weeks from the first to the last, `T` = weeks from the first to now, `zbar` =
   mean value of the repeat days (the first day's spend is left out, as Gamma-Gamma assumes).
2. BG/NBD fitted on (x, t_x, T) of every buyer; Gamma-Gamma on (x, zbar) of repeat buyers.
3. Per buyer: `p_alive`, `churn_risk` = 1 − p_alive, `expected_purchases_90d`, `clv` (the
   next 12 months of expected purchases × expected value, discounted monthly) and `clv_tier`
   (top 20% "high", next 30% "medium", the rest "low").

When the data cannot carry a model (`bgnbd.ModelDataError`), the run records why and falls back:
- BG/NBD not identified (fewer than 20 buyers or 5 repeat buyers, nobody bought twice, every
  first purchase today): no CLV, P(alive), churn or expected-purchase scores — none is better
  than invented ones; the previous ones are removed, as on every run;
- Gamma-Gamma not identified (fewer than 5 repeat buyers with a positive spend), or fitted with
  q ≤ 1 (no finite mean spend): each repeat buyer's own mean spend, and for one-time buyers the
  mean of those;
- no spend at all (every repeat purchase's amount zero or missing): P(alive), churn risk and
  expected purchases are scored; CLV and its tier are not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopkeeper.segments.compiler import customers, events
from shopkeeper.segments.dialect import day_number, json_number
from shopkeeper.segments.scores import store
from shopkeeper.segments.scores.bgnbd import Array, BgNbd, GammaGamma, ModelDataError, fit_bgnbd, fit_gamma_gamma

NAMES = ("clv", "clv_tier", "p_alive", "churn_risk", "expected_purchases_90d")
WEEK = 7.0
HORIZON_MONTHS = 12
MONTHLY_DISCOUNT = 0.01
MONTH_WEEKS = 30.0 / WEEK


@dataclass(frozen=True, slots=True)
class Summary:
    customer_ids: list[str]
    x: Array
    t_x: Array
    T: Array
    zbar: Array


def purchase_summary(
    session: Session,
    workspace_id: str,
    now: datetime,
    *,
    purchase_event: str = store.PURCHASE_EVENT,
    amount_property: str = store.AMOUNT_PROPERTY,
) -> Summary:
    """(x, t_x, T, zbar) per live buyer, from purchases up to `now` (day granularity)."""
    day = day_number(events.c.timestamp)
    daily = (
        select(
            events.c.customer_id,
            day.label("day"),
            func.sum(func.coalesce(json_number(events.c.properties, amount_property), 0.0)).label("amount"),
        )
        .where(
            events.c.workspace_id == workspace_id,
            events.c.name == purchase_event,
            events.c.timestamp <= now,
            events.c.customer_id.in_(
                select(customers.c.id).where(
                    customers.c.workspace_id == workspace_id, customers.c.merged_into.is_(None)
                )
            ),
        )
        .group_by(events.c.customer_id, day)
        .order_by(events.c.customer_id, day)
    )
    ids: list[str] = []
    x: list[float] = []
    first: list[float] = []
    last: list[float] = []
    repeat_total: list[float] = []
    for customer_id, d, amount in session.execute(daily):
        if ids and ids[-1] == customer_id:
            x[-1] += 1
            last[-1] = float(d)
            repeat_total[-1] += float(amount)
        else:
            ids.append(customer_id)
            x.append(0.0)
            first.append(float(d))
            last.append(float(d))
            repeat_total.append(0.0)
    today = np.floor(now.timestamp() / 86400)
    xs = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        zbar = np.where(xs > 0, np.asarray(repeat_total) / xs, 0.0)
    return Summary(
        ids,
        xs,
        (np.asarray(last) - np.asarray(first)) / WEEK,
        (today - np.asarray(first)) / WEEK,
        np.asarray(zbar, dtype=np.float64),
    )


def lifetime_value(model: BgNbd, spend: Array, s: Summary) -> Array:
    """Discounted value of the next HORIZON_MONTHS: Σ_m ΔE[purchases in month m] · E[M] / (1+d)^m."""
    total = np.zeros_like(s.x)
    previous = np.zeros_like(s.x)
    for month in range(1, HORIZON_MONTHS + 1):
        cumulative = model.expected_purchases(month * MONTH_WEEKS, s.x, s.t_x, s.T)
        total += (cumulative - previous) * spend / (1 + MONTHLY_DISCOUNT) ** month
        previous = cumulative
    return total


def tiers(values: Array) -> list[str]:
    """Top 20% high, next 30% medium, the rest low, by rank — equal values share the better
    tier (a customer's tier never depends on the order of customers it ties with)."""
    n = len(values)
    if n == 0:
        return []
    # how many customers are worth strictly more: the rank shared by everyone at that value
    ahead = np.searchsorted(np.sort(-values), -values, side="left")
    share = ahead / n
    return [str(t) for t in np.where(share < 0.2, "high", np.where(share < 0.5, "medium", "low"))]


@dataclass(frozen=True, slots=True)
class ClvReport:
    buyers: int
    repeat_buyers: int
    bgnbd: dict[str, float] | None
    gamma_gamma: dict[str, float] | None
    note: str | None = None


def compute(
    session: Session,
    workspace_id: str,
    now: datetime,
    *,
    purchase_event: str = store.PURCHASE_EVENT,
    amount_property: str = store.AMOUNT_PROPERTY,
) -> ClvReport:
    """Fit both models on the workspace's purchases and replace its CLV scores."""
    s = purchase_summary(session, workspace_id, now, purchase_event=purchase_event, amount_property=amount_property)
    store.replace(session, workspace_id, NAMES)
    repeat = int((s.x > 0).sum())
    try:
        model = fit_bgnbd(s.x, s.t_x, s.T)
    except ModelDataError as exc:
        refused = f"no CLV scores: {exc}"
        store.record_run(session, workspace_id, "clv", {}, {"note": refused}, len(s.x), now)
        return ClvReport(len(s.x), repeat, None, None, refused)
    notes: list[str] = []
    if model.at_bound:
        notes.append(f"BG/NBD: {', '.join(model.at_bound)} at the edge of the search (no variation of that kind)")
    spend_model: GammaGamma | None = None
    try:
        spend_model = fit_gamma_gamma(s.x, s.zbar)
    except ModelDataError as exc:
        notes.append(str(exc))
    has_spend = bool((s.zbar[s.x > 0] > 0).any())
    if spend_model is not None and np.isfinite(spend_model.population_mean):
        spend = spend_model.expected_value(s.x, s.zbar, spend_model.population_mean)
    else:
        if spend_model is not None:
            notes.append(f"Gamma-Gamma: q = {spend_model.q:.3g} ≤ 1 gives no finite mean spend")
        if has_spend:
            notes.append("spend: each repeat buyer's own mean, one-time buyers the mean of those")
        mean_spend = float(s.zbar[s.x > 0].mean())
        spend = np.where(s.x > 0, s.zbar, mean_spend)
    # Refunds can make a mean negative; nobody is worth less than nothing to the shop's plans.
    spend = np.maximum(spend, 0.0)
    if not has_spend:
        notes.append(f"no clv or clv_tier scores: no repeat purchase has a positive {amount_property!r}")
    alive = model.p_alive(s.x, s.t_x, s.T)
    next_90 = model.expected_purchases(90 / WEEK, s.x, s.t_x, s.T)
    value = lifetime_value(model, spend, s)
    labels = tiers(value)
    rows: list[dict[str, Any]] = []
    for i, customer_id in enumerate(s.customer_ids):
        base = {"customer_id": customer_id, "workspace_id": workspace_id, "computed_at": now}
        if has_spend:
            rows.append({**base, "name": "clv", "value": round(float(value[i]), 4), "label": None})
            rows.append({**base, "name": "clv_tier", "value": None, "label": labels[i]})
        rows.append({**base, "name": "p_alive", "value": round(float(alive[i]), 6), "label": None})
        rows.append({**base, "name": "churn_risk", "value": round(1 - float(alive[i]), 6), "label": None})
        rows.append({**base, "name": "expected_purchases_90d", "value": round(float(next_90[i]), 6), "label": None})
    store.insert_rows(session, rows)
    bg = asdict(model)
    gg = asdict(spend_model) if spend_model is not None else None
    stats: dict[str, Any] = {"buyers": len(s.x), "repeat_buyers": repeat}
    if has_spend:
        stats["mean_clv"] = float(value.mean())
    note = "; ".join(notes) or None
    if note:
        stats["note"] = note
    store.record_run(
        session, workspace_id, "clv", {"bgnbd": bg, "gamma_gamma": gg, "unit": "week"}, stats, len(s.x), now
    )
    return ClvReport(len(s.x), repeat, bg, gg, note)
