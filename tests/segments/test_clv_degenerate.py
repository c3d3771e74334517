"""CLV on data that cannot carry the models: no repeat buyers, every customer one purchase, a
single customer, zero amounts, everything bought today (T = 0). The fitters refuse with a reason
(`ModelDataError`) instead of a scipy exception, NaN or parameters of 10¹⁸, and a score run
records the reason and falls back as docs/segments.md says."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import insert, select

from shopkeeper.auth.models import Workspace
from shopkeeper.db.session import Database
from shopkeeper.segments.compiler import customers, events
from shopkeeper.segments.models import CustomerScore, ScoreRun
from shopkeeper.segments.scores import clv
from shopkeeper.segments.scores.bgnbd import (
    LOWER,
    UPPER,
    ModelDataError,
    fit_bgnbd,
    fit_gamma_gamma,
)
from tests.segments.cdnow import BGNBD
from tests.segments.test_clv import simulate_bgnbd

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_warnings() -> Iterator[None]:
    """Not a RuntimeWarning either (overflow, division by zero, invalid value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _weeks(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(1, 40, n)


# -- the fitters -------------------------------------------------------------------------------
def test_no_repeat_buyers_is_refused_with_the_reason() -> None:
    T = _weeks(200)
    with pytest.raises(ModelDataError, match="no repeat purchases — each of the 200 buyers bought on one day only"):
        fit_bgnbd(np.zeros(200), np.zeros(200), T)


def test_a_single_customer_is_refused_whether_or_not_they_bought_again() -> None:
    with pytest.raises(ModelDataError, match="1 buyer of whom 1 bought again; at least 20 buyers and 5 repeat"):
        fit_bgnbd(np.array([3.0]), np.array([10.0]), np.array([20.0]))
    with pytest.raises(ModelDataError, match="the one buyer bought on one day only"):
        fit_bgnbd(np.array([0.0]), np.array([0.0]), np.array([20.0]))


def test_too_few_repeat_buyers_is_refused() -> None:
    x = np.zeros(100)
    x[:4] = 2
    t_x = np.where(x > 0, 5.0, 0.0)
    with pytest.raises(ModelDataError, match="100 buyers of whom 4 bought again"):
        fit_bgnbd(x, t_x, np.full(100, 10.0))


def test_everything_bought_today_is_refused() -> None:
    with pytest.raises(ModelDataError, match="first purchase today \\(T = 0\\)"):
        fit_bgnbd(np.zeros(50), np.zeros(50), np.zeros(50))


def test_some_first_purchases_today_are_fine() -> None:
    x, t_x, T = simulate_bgnbd(3000, **BGNBD, seed=11)
    x[:50], t_x[:50], T[:50] = 0.0, 0.0, 0.0
    model = fit_bgnbd(x, t_x, T)
    assert model.at_bound == () and all(np.isfinite([model.r, model.alpha, model.a, model.b]))
    assert model.p_alive(np.zeros(1), np.zeros(1), np.zeros(1))[0] == 1.0
    assert np.isfinite(model.expected_purchases(12.9, np.zeros(1), np.zeros(1), np.zeros(1))).all()


@pytest.mark.parametrize(
    ("x", "t_x", "T", "reason"),
    [
        ([np.nan, 1.0], [0.0, 1.0], [1.0, 2.0], "x holds a value that is not a finite number"),
        ([1.0, 1.0], [5.0, 1.0], [1.0, 2.0], "t_x > T"),
        ([-1.0, 1.0], [0.0, 1.0], [1.0, 2.0], "whole numbers"),
        ([1.5, 1.0], [1.0, 1.0], [1.0, 2.0], "whole numbers"),
        ([1.0, 1.0], [0.0, 1.0], [1.0, 2.0], "x > 0 with t_x = 0"),
        ([1.0, 1.0], [1.0], [1.0, 2.0], "one value per customer"),
        ([], [], [], "no customers"),
    ],
)
def test_an_impossible_summary_is_refused(x: list[float], t_x: list[float], T: list[float], reason: str) -> None:
    with pytest.raises(ModelDataError, match=reason):
        fit_bgnbd(np.array(x), np.array(t_x), np.array(T))


def test_customers_who_all_buy_alike_give_bounded_parameters_and_finite_predictions() -> None:
    """Everyone bought every week for ten weeks: no heterogeneity to estimate. The maximum is at
    infinity; the search stops at its edge, says so, and predicts what that limit predicts."""
    x, t_x, T = np.full(200, 10.0), np.full(200, 10.0), np.full(200, 10.0)
    model = fit_bgnbd(x, t_x, T)
    params = [model.r, model.alpha, model.a, model.b]
    assert all(LOWER <= p <= UPPER for p in params), params
    assert "r" in model.at_bound and np.isfinite(model.log_likelihood)
    assert np.allclose(model.expected_purchases(10.0, x, t_x, T), 10.0, rtol=0.01)  # one a week
    assert (model.p_alive(x, t_x, T) > 0.99).all()


def test_gamma_gamma_refuses_zero_spend_and_too_few_buyers() -> None:
    x = np.array([1.0, 2.0, 3.0, 0.0, 4.0, 1.0])
    with pytest.raises(ModelDataError, match="the 5 repeat buyers spent nothing"):
        fit_gamma_gamma(x, np.zeros(6))
    with pytest.raises(ModelDataError, match="no repeat purchases"):
        fit_gamma_gamma(np.zeros(6), np.full(6, 10.0))
    with pytest.raises(ModelDataError, match="2 repeat buyers with a positive spend; at least 5"):
        fit_gamma_gamma(x, np.array([0.0, 30.0, 0.0, 0.0, 12.0, 0.0]))
    with pytest.raises(ModelDataError, match="zbar holds a value that is not a finite number"):
        fit_gamma_gamma(x, np.array([np.inf, 30.0, 1.0, 0.0, 12.0, 3.0]))


def test_gamma_gamma_on_one_spend_for_everyone_predicts_that_spend() -> None:
    x = np.random.default_rng(2).integers(1, 6, 300).astype(float)
    model = fit_gamma_gamma(x, np.full(300, 20.0))
    assert all(LOWER <= p <= UPPER for p in (model.p, model.q, model.gamma)) and model.at_bound
    assert np.allclose(model.expected_value(x, np.full(300, 20.0), model.population_mean), 20.0, rtol=1e-3)


# -- a score run -------------------------------------------------------------------------------
def _shop(db: Database, purchases: list[tuple[int, float, float | None]]) -> str:
    """A workspace whose customer `i` made a purchase `days` before NOW of `amount` (None: no
    amount property), for each (i, days, amount)."""
    ws = f"ws_degenerate_{len(purchases)}_{abs(hash(tuple(purchases))) % 10**8}"
    people = sorted({i for i, _, _ in purchases})
    with db.engine.begin() as conn:
        conn.execute(
            insert(Workspace.__table__),  # type: ignore[arg-type]
            [
                {
                    "id": ws,
                    "name": ws,
                    "slug": ws,
                    "settings": {},
                    "identity_epoch": 0,
                    "signing_secret": "s",
                    "hashing_secret": "h",
                    "created_at": NOW,
                }
            ],
        )
        conn.execute(
            insert(customers),
            [
                {
                    "id": f"cus_{ws}_{i}"[:40],
                    "workspace_id": ws,
                    "traits": {},
                    "created_at": NOW,
                    "updated_at": NOW,
                    "merged_into": None,
                    "timezone": None,
                    "locale": None,
                }
                for i in people
            ],
        )
        conn.execute(
            insert(events),
            [
                {
                    "id": f"evt_{ws}_{n}"[:40],
                    "workspace_id": ws,
                    "customer_id": f"cus_{ws}_{i}"[:40],
                    "message_id": f"m{n}",
                    "type": "track",
                    "name": "Order Completed",
                    "timestamp": NOW - timedelta(days=days),
                    "received_at": NOW,
                    "properties": {} if amount is None else {"total": amount},
                }
                for n, (i, days, amount) in enumerate(purchases)
            ],
        )
    return ws


def _scores(db: Database, ws: str) -> dict[str, int]:
    with db.session() as s:
        names = s.scalars(select(CustomerScore.name).where(CustomerScore.workspace_id == ws)).all()
    return {n: names.count(n) for n in set(names)}


def _run(db: Database, ws: str) -> tuple[clv.ClvReport, ScoreRun]:
    with db.session(write=True) as s:
        report = clv.compute(s, ws, NOW)
    with db.session() as s:
        run = s.scalars(select(ScoreRun).where(ScoreRun.workspace_id == ws, ScoreRun.kind == "clv")).one()
        s.expunge(run)
    return report, run


def _buyers(n: int, repeat_every: int, amount: float | None) -> list[tuple[int, float, float | None]]:
    """n buyers, first purchase 10 to 300 days ago; every `repeat_every`-th bought again twice."""
    out: list[tuple[int, float, float | None]] = []
    for i in range(n):
        first = 10 + (i * 37) % 290
        out.append((i, first, amount))
        if repeat_every and i % repeat_every == 0:
            out += [(i, first * 0.6, amount), (i, first * 0.2, amount)]
    return out


@pytest.mark.parametrize(
    ("purchases", "reason"),
    [
        # every customer bought once
        (_buyers(60, 0, 30.0), "no repeat purchases — each of the 60 buyers bought on one day only"),
        # several orders each, but on one day: one transaction a day, as in the papers
        (
            [(i, 5 + i, 20.0) for i in range(30)] + [(i, 5 + i + 0.1, 20.0) for i in range(30)],
            "no repeat purchases — each of the 30 buyers bought on one day only",
        ),
        # a single customer, however loyal
        ([(0, d, 25.0) for d in (3, 40, 90, 200)], "1 buyer of whom 1 bought again"),
        # the shop opened today
        ([(i, 0.01 * i, 10.0) for i in range(40)], "first purchase today \\(T = 0\\)"),
    ],
    ids=["one-purchase-each", "one-day-each", "single-customer", "all-today"],
)
def test_a_run_on_data_without_repeat_behaviour_records_why_and_scores_nothing(
    db: Database, purchases: list[tuple[int, float, float | None]], reason: str
) -> None:
    ws = _shop(db, purchases)
    report, run = _run(db, ws)
    assert report.bgnbd is None and report.gamma_gamma is None
    assert report.note is not None and report.note.startswith("no CLV scores: BG/NBD: ")
    assert re.search(reason, report.note), report.note
    assert run.stats == {"note": report.note} and run.params == {}
    assert _scores(db, ws) == {}


@pytest.mark.parametrize("amount", [0.0, None], ids=["zero", "missing"])
def test_a_run_without_spend_scores_activity_but_not_value(db: Database, amount: float | None) -> None:
    ws = _shop(db, _buyers(60, 3, amount))
    report, run = _run(db, ws)
    assert report.bgnbd is not None and report.gamma_gamma is None
    assert report.note is not None
    assert "the 20 repeat buyers spent nothing" in report.note
    assert "no clv or clv_tier scores: no repeat purchase has a positive 'total'" in report.note
    assert run.stats["note"] == report.note and "mean_clv" not in run.stats
    assert _scores(db, ws) == {"p_alive": 60, "churn_risk": 60, "expected_purchases_90d": 60}


def test_a_run_with_few_spending_repeat_buyers_values_them_at_their_own_mean(db: Database) -> None:
    purchases = _buyers(60, 3, 0.0)
    # two repeat buyers paid something on their repeat days: too few for Gamma-Gamma
    purchases = [(i, d, 40.0 if i in (0, 3) and d < 10 + (i * 37) % 290 else a) for i, d, a in purchases]
    ws = _shop(db, purchases)
    report, _run_row = _run(db, ws)
    assert report.gamma_gamma is None and report.note is not None
    assert "2 repeat buyers with a positive spend; at least 5" in report.note
    assert "each repeat buyer's own mean" in report.note
    assert _scores(db, ws)["clv"] == 60
    with db.session() as s:
        value = dict(
            s.execute(
                select(CustomerScore.customer_id, CustomerScore.value).where(
                    CustomerScore.workspace_id == ws, CustomerScore.name == "clv"
                )
            ).all()
        )
    paying = [v for c, v in value.items() if c.endswith(("_0", "_3"))]
    assert all(v is not None and v > 0 for v in paying) and all(v is not None and v >= 0 for v in value.values())


def test_tiers_give_equal_values_the_same_tier() -> None:
    assert clv.tiers(np.zeros(10)) == ["high"] * 10
    assert clv.tiers(np.array([5.0, 1, 1, 1, 1, 1, 1, 1, 1, 0])) == ["high"] * 9 + ["low"]  # 1 is second
    assert clv.tiers(np.arange(10.0)[::-1]) == ["high"] * 2 + ["medium"] * 3 + ["low"] * 5
    assert clv.tiers(np.array([])) == []
