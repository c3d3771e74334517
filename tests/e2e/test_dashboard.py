"""Logging in through the browser, the dashboard and the analytics page, with a little history."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from shopkeeper import clock
from shopkeeper.messaging.models import Send
from shopkeeper.segments.models import CustomerScore
from tests.consent.factories import make_customer
from tests.e2e.conftest import Shop, shoot
from tests.helpers import ingest, message
from tests.messaging.factories import make_template, plan


@pytest.fixture(scope="module", autouse=True)
def history(shop: Shop) -> None:
    """Two weeks of events, messages with their outcomes, survey answers and lifetime values."""
    rng = random.Random(3)
    now = clock.now()
    make_template(shop.db, shop.workspace_id)
    payloads = []
    for i in range(30):
        user = f"shopper-{i}"
        make_customer(shop.db, shop.workspace_id, user, email=f"{user}@example.com", phone=f"+4479111234{i:02d}")
        for _ in range(rng.randrange(2, 12)):
            at = now - timedelta(days=rng.randrange(0, 14), hours=rng.randrange(0, 12))
            event = rng.choice(["Product Viewed", "Product Viewed", "Cart Viewed", "Order Completed"])
            payloads.append(message("track", userId=user, event=event, timestamp=at.isoformat()))
        if i % 3 == 0:
            survey = rng.choice(["csat", "nps"])
            score = rng.randrange(3, 6) if survey == "csat" else rng.randrange(5, 11)
            payloads.append(
                message("track", userId=user, event="Survey Answered", properties={"survey": survey, "score": score})
            )
    ingest(shop.db, shop.workspace_id, payloads)
    later = now + timedelta(days=1)
    with shop.db.session() as s:
        from shopkeeper.customers.models import Customer

        customers = [
            c
            for (c,) in s.execute(
                Customer.__table__.select()
                .with_only_columns(Customer.id)
                .where(Customer.workspace_id == shop.workspace_id)
            )
        ]
    ids = [
        plan(shop.db, shop.workspace_id, c, channel=rng.choice(["email", "email", "sms"]), send_at=later)
        for c in customers
    ]
    with shop.db.session(write=True) as s:
        for n, send_id in enumerate(ids):
            send = s.get(Send, send_id)
            assert send is not None
            send.status = rng.choice(["delivered", "opened", "clicked", "bounced", "queued"])
            send.cost = 0.0005 if send.channel == "email" else 0.04
            send.created_at = now - timedelta(days=n % 7)
        for c in customers:
            s.add(
                CustomerScore(
                    workspace_id=shop.workspace_id,
                    customer_id=c,
                    name="clv",
                    value=round(rng.lognormvariate(4, 0.8), 2),
                    label=None,
                    computed_at=now,
                )
            )


def test_log_in_and_see_the_dashboard(page: object, shop: Shop) -> None:
    tab = page
    tab.reload()  # type: ignore[attr-defined]
    assert tab.get_by_role("heading", name="Dashboard").is_visible()  # type: ignore[attr-defined]
    assert tab.get_by_role("navigation", name="Main").is_visible()  # type: ignore[attr-defined]
    assert tab.get_by_test_id("customers-count").inner_text() == "30"  # type: ignore[attr-defined]
    tab.wait_for_selector("canvas[data-drawn]")  # type: ignore[attr-defined]
    assert tab.locator("canvas[data-drawn]").count() == 2  # type: ignore[attr-defined]  # both charts drawn
    shoot(tab, "dashboard")


def test_analytics_draws_every_chart_and_the_period_can_change(page: object, shop: Shop) -> None:
    tab = page
    tab.get_by_role("link", name="Analytics").click()  # type: ignore[attr-defined]
    tab.wait_for_selector("canvas[data-drawn]")  # type: ignore[attr-defined]
    assert tab.locator("canvas[data-drawn]").count() == 5  # type: ignore[attr-defined]
    assert "30 customers" in tab.locator("main").inner_text()  # type: ignore[attr-defined]
    tab.get_by_label("Period", exact=True).select_option("7d")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Show").click()  # type: ignore[attr-defined]
    tab.wait_for_url("**/analytics?period=7d")  # type: ignore[attr-defined]
    shoot(tab, "analytics")
