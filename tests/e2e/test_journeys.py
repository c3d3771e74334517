"""A journey in the browser: written and checked as it is typed, activated, and its graph's
per-step counts rising as customers arrive through the tracking API — without reloading."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import expect

from shopkeeper import clock
from shopkeeper.journeys import service as journeys
from shopkeeper.segments import service as segments
from tests.e2e.conftest import Shop, shoot

CART = """\
trigger: {type: event, event: Cart Abandoned, where: [{property: total, op: gt, value: 30}]}
reentry: {policy: after_exit, cooldown: 7d}
goal: {event: Order Completed, within: 7d}
steps:
  - {id: control, type: holdout, percent: 20}
  - {id: tag, type: update_trait, traits: {cart_reminded: true}}
  - {id: test, type: split, variants: [{name: soon, next: hour}, {name: later, next: day}]}
  - {id: hour, type: wait, duration: 1h, next: bought}
  - {id: day, type: wait, duration: 1d, next: bought}
  - {id: bought, type: goal}
"""


def a_campaign(shop: Shop) -> None:
    """A broadcast campaign beside the journey, for the list."""
    now = clock.now()
    with shop.db.session(write=True) as s:
        segments.create(
            s,
            shop.workspace_id,
            key="cart-abandoners",
            name="Cart abandoners",
            conditions={"event": {"name": "Cart Abandoned", "within_days": 30}},
            actor="test",
            now=now,
        )
        journeys.create(
            s,
            shop.workspace_id,
            key="monday-digest",
            name="Monday digest",
            raw={
                "trigger": {
                    "type": "schedule",
                    "cron": "0 9 * * 1",
                    "timezone": "Europe/Paris",
                    "segment": "cart-abandoners",
                },
                "steps": [{"id": "mark", "type": "update_trait", "traits": {"digest": True}}],
            },
            actor="test",
            now=now,
        )


def track(shop: Shop, user: str, event: str, **properties: Any) -> None:
    response = httpx.post(
        f"{shop.url}/v1/track",
        auth=(shop.write_key, ""),
        json={"userId": user, "event": event, "properties": properties},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def count(tab: Any, step: str) -> Any:
    return tab.get_by_test_id(f"count-{step}").first


def test_activate_a_journey_and_watch_its_counts(page: Any, shop: Shop) -> None:
    a_campaign(shop)
    tab = page
    tab.goto("/journeys/new")
    tab.get_by_label("Key").fill("abandoned-cart")
    tab.get_by_label("Name").fill("Abandoned cart")
    editor = tab.get_by_role("textbox", name="Definition")
    check = tab.locator("#check")

    # Checked as it is typed: the message names the step and the field.
    editor.fill(CART.replace("duration: 1d", "duration: tomorrow"))
    expect(check).to_contain_text("step day, field duration")
    editor.fill(CART)
    expect(check).to_contain_text("Valid: a journey started event, 6 steps")
    expect(check.locator("[data-step=test]")).to_be_visible()
    tab.get_by_role("button", name="Create").click()
    tab.wait_for_url(re.compile(r"/journeys/jny_"))
    expect(tab.get_by_test_id("status")).to_have_text("draft")

    tab.get_by_role("button", name="Activate").click()
    expect(tab.get_by_test_id("status")).to_have_text("active")
    expect(count(tab, "__entry__")).to_have_text("0 entered")
    tab.evaluate("window.stillTheSamePage = true")

    shoppers = [f"shopper-{i}" for i in range(12)]
    for user in shoppers:
        track(shop, user, "Cart Abandoned", total=45)
    track(shop, "browser-only", "Cart Abandoned", total=10)  # under the trigger's filter
    expect(count(tab, "__entry__")).to_have_text("12 entered", timeout=20_000)
    expect(count(tab, "control")).to_have_text("12 entered")
    treated = int(count(tab, "tag").text_content().split()[0])
    assert 0 < treated <= 12
    hour = int(count(tab, "hour").text_content().split()[0])
    day = int(count(tab, "day").text_content().split()[0])
    assert hour + day == treated

    # Two of them buy: the conversions show too, still without a reload.
    for user in shoppers[:2]:
        track(shop, user, "Order Completed", total=45)
    expect(tab.get_by_test_id("converted")).to_have_text("2", timeout=20_000)
    assert tab.evaluate("window.stillTheSamePage") is True
    shoot(tab, "journey")

    tab.get_by_label("Why pause it").fill("checking the copy")
    tab.get_by_role("button", name="Pause").click()
    expect(tab.get_by_test_id("status")).to_have_text("paused")
    expect(tab.get_by_test_id("paused-reason")).to_contain_text("checking the copy")
    tab.get_by_role("button", name="Resume").click()
    expect(tab.get_by_test_id("status")).to_have_text("active")

    tab.goto("/journeys")
    rows = tab.get_by_test_id("journeys")
    expect(rows).to_contain_text("Abandoned cart")
    expect(rows).to_contain_text("Monday digest")
    expect(rows.get_by_role("row", name=re.compile("Abandoned cart"))).to_contain_text("12")
    shoot(tab, "journeys")
