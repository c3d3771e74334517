"""SPEC §7 customer value: BG/NBD + Gamma-Gamma fitted on purchase events, validated against the
published CDNOW estimates (within 1%), from the published summary and from the raw purchases
stored as events; and parameter recovery on a documented simulation."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import insert

from shopkeeper.auth.models import Workspace
from shopkeeper.db.session import Database
from shopkeeper.segments.compiler import customers, events
from shopkeeper.segments.scores import clv
from shopkeeper.segments.scores.bgnbd import BgNbd, GammaGamma, fit_bgnbd, fit_gamma_gamma
from tests.segments.cdnow import BGNBD, BGNBD_LL, GAMMA_GAMMA, spend_rows, summary_rows, transactions

CALIBRATION_END = datetime(1997, 9, 30, 12, 0, tzinfo=UTC)  # 39 weeks after 1 January 1997


def _close(got: float, published: float, tolerance: float = 0.01) -> bool:
    return abs(got - published) <= tolerance * abs(published)


def test_bgnbd_fit_on_cdnow_matches_the_published_estimates_within_one_percent() -> None:
    rows = summary_rows()
    assert len(rows) == 2357
    x, t_x, T = (np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T"))
    model = fit_bgnbd(x, t_x, T)
    got = {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b}
    assert all(_close(got[k], v) for k, v in BGNBD.items()), got
    assert abs(model.log_likelihood - BGNBD_LL) < 0.5


def test_gamma_gamma_fit_on_cdnow_matches_the_published_estimates_within_one_percent() -> None:
    rows = spend_rows()
    x, zbar = (np.array([float(r[k]) for r in rows]) for k in ("x", "zbar"))
    model = fit_gamma_gamma(x, zbar)
    got = {"p": model.p, "q": model.q, "gamma": model.gamma}
    assert all(_close(got[k], v) for k, v in GAMMA_GAMMA.items()), got


def test_p_alive_expected_purchases_and_spend_agree_with_the_lifetimes_reference() -> None:
    """The unmaintained `lifetimes` package as an independent implementation of the same formulas."""
    import warnings

    pd = pytest.importorskip("pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter

    model = BgNbd(**BGNBD, log_likelihood=0.0)
    reference = BetaGeoFitter()
    reference.params_ = pd.Series(BGNBD)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 15, 200).astype(float)
    T = rng.uniform(27, 39, 200)
    t_x = np.where(x > 0, rng.uniform(0, 1, 200) * T, 0.0)
    for horizon in (1.0, 12.9, 52.0):
        ours = model.expected_purchases(horizon, x, t_x, T)
        theirs = reference.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, T)
        assert np.allclose(ours, np.asarray(theirs), rtol=1e-6)
    assert np.allclose(model.p_alive(x, t_x, T), np.asarray(reference.conditional_probability_alive(x, t_x, T)))
    alive = model.p_alive(np.array([0.0, 2.0, 2.0]), np.array([0.0, 30.43, 5.0]), np.array([38.86] * 3))
    assert alive[0] == 1.0 and alive[1] > alive[2]  # the more recent buyer is more likely active

    spend = GammaGammaFitter()
    spend.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
    repeat = x > 0
    zbar = rng.uniform(5, 80, 200)
    ours_spend = GammaGamma(6.25, 3.74, 15.44, 0.0).expected_value(x[repeat], zbar[repeat], 0)
    theirs_spend = spend.conditional_expected_average_profit(pd.Series(x[repeat]), pd.Series(zbar[repeat]))
    assert np.allclose(ours_spend, np.asarray(theirs_spend), rtol=1e-9)


def _load_cdnow_events(db: Database) -> str:
    ws = "ws_cdnow"
    day0 = datetime(1997, 1, 1, tzinfo=UTC)
    purchases = transactions()
    people = sorted({p[0] for p in purchases})
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
                    "created_at": day0,
                }
            ],
        )
        conn.execute(
            insert(customers),
            [
                {
                    "id": f"cus_cdnow_{p}",
                    "workspace_id": ws,
                    "traits": {},
                    "created_at": day0,
                    "updated_at": day0,
                    "merged_into": None,
                    "timezone": None,
                    "locale": None,
                }
                for p in people
            ],
        )
        conn.execute(
            insert(events),
            [
                {
                    "id": f"evt_cdnow_{i}",
                    "workspace_id": ws,
                    "customer_id": f"cus_cdnow_{p}",
                    "message_id": f"m{i}",
                    "type": "track",
                    "name": "Order Completed",
                    "timestamp": datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC),
                    "received_at": day0,
                    "properties": {"total": amount},
                }
                for i, (p, day, amount) in enumerate(purchases)
            ],
        )
    return ws


def test_cdnow_purchases_stored_as_events_give_the_published_summary_and_estimates(db: Database) -> None:
    ws = _load_cdnow_events(db)
    with db.session() as session:
        summary = clv.purchase_summary(session, ws, CALIBRATION_END)
    published = {f"cus_cdnow_{int(r['ID']):04d}": r for r in summary_rows()}
    assert len(summary.customer_ids) == len(published) == 2357
    for i, customer_id in enumerate(summary.customer_ids):
        row = published[customer_id]
        assert summary.x[i] == float(row["frequency"]), customer_id
        assert round(summary.t_x[i], 2) == pytest.approx(float(row["recency"]), abs=0.006), customer_id
        assert round(summary.T[i], 2) == pytest.approx(float(row["T"]), abs=0.006), customer_id
    spend = {f"cus_cdnow_{int(r['ID']):04d}": float(r["zbar"]) for r in spend_rows()}
    for i, customer_id in enumerate(summary.customer_ids):
        assert summary.zbar[i] == pytest.approx(spend[customer_id], abs=0.006), customer_id
    model = fit_bgnbd(summary.x, summary.t_x, summary.T)
    got = {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b}
    assert all(_close(got[k], v) for k, v in BGNBD.items()), got

    now = CALIBRATION_END
    with db.session(write=True) as session:
        report = clv.compute(session, ws, now)
    assert report.bgnbd is not None and _close(report.bgnbd["r"], BGNBD["r"])
    with db.session() as session:
        from shopkeeper.segments.models import CustomerScore

        tiers = [s.label for s in session.query(CustomerScore).filter_by(workspace_id=ws, name="clv_tier")]
        alive = [s.value for s in session.query(CustomerScore).filter_by(workspace_id=ws, name="p_alive")]
    assert len(tiers) == 2357 and tiers.count("high") == math.ceil(2357 * 0.2)
    assert all(v is not None and 0 <= v <= 1 for v in alive) and len(alive) == 2357


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, seed: int) -> tuple[np.ndarray, ...]:
    """The BG/NBD story (the paper's §2): each customer has a purchase rate λ ~ Gamma(r, 1/α) and
    a drop-out probability p ~ Beta(a, b); after each purchase they leave with probability p.
    Cohort like CDNOW's: first purchases spread over 12 weeks, observed until week 39."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = 39 - rng.uniform(0, 12, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i]) if lam[i] > 0 else np.inf
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, t_x, T


def test_fit_recovers_the_parameters_of_a_simulated_population() -> None:
    x, t_x, T = simulate_bgnbd(30_000, **BGNBD, seed=7)
    model = fit_bgnbd(x, t_x, T)
    got = {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b}
    assert all(_close(got[k], v, 0.15) for k, v in BGNBD.items()), got
