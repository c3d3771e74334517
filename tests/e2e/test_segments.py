"""Building a segment in the browser: its live count follows each condition as it changes."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Shop, shoot
from tests.helpers import ingest, message

PEOPLE = [
    ("Ada", "Lovelace", "pro", "GB", 3),
    ("Grace", "Hopper", "pro", "US", 1),
    ("Alan", "Turing", "free", "GB", 0),
    ("Katherine", "Johnson", "team", "US", 4),
    ("Edsger", "Dijkstra", "free", "NL", 2),
    ("Barbara", "Liskov", "pro", "US", 0),
    ("Donald", "Knuth", "team", "US", 2),
    ("Margaret", "Hamilton", "pro", "US", 5),
    ("Linus", "Torvalds", "free", "FI", 1),
    ("Frances", "Allen", "pro", "US", 2),
]


def seed(shop: Shop) -> None:
    payloads: list[dict[str, Any]] = []
    for first, last, plan, country, orders in PEOPLE:
        user = first.lower()
        traits = {"email": f"{user}@example.com", "first_name": first, "last_name": last, "plan": plan}
        payloads.append(message("identify", userId=user, traits=traits | {"country": country}))
        payloads += [
            message("track", userId=user, event="Order Completed", properties={"total": 20 + 15 * i})
            for i in range(orders)
        ]
    ingest(shop.db, shop.workspace_id, payloads)


def settle(tab: Any) -> None:
    """Wait for the builder's own request (a structural edit redraws it) before typing on."""
    expect(tab.locator(".htmx-request")).to_have_count(0)


def test_build_a_segment_and_see_its_count_change(page: Any, shop: Shop) -> None:
    seed(shop)
    tab = page
    tab.goto("/segments/new")
    count = tab.get_by_test_id("segment-count")
    first = tab.get_by_role("group", name="Condition 1")
    first.get_by_label("Trait").fill("plan")
    first.get_by_label("Value", exact=True).fill("pro")
    expect(count).to_have_text("5")
    expect(tab.locator("#segment-members")).to_contain_text("Ada Lovelace")

    # A second condition, from the keyboard: choose its kind, add it, type into it.
    tab.get_by_label("New condition").select_option("event")
    tab.get_by_role("button", name="Add condition").press("Enter")
    settle(tab)
    second = tab.get_by_role("group", name="Condition 2")
    name = second.get_by_label("Event name")
    expect(name).to_be_focused()
    name.fill("Order Completed")
    expect(count).to_have_text("4")  # Barbara has never ordered
    second.get_by_label("Times").fill("3")
    expect(count).to_have_text("2")  # Ada (3) and Margaret (5)

    # A property filter on the event: orders over 60 (the 4th order of each is 65).
    second.get_by_role("button", name="Add a property filter").click()
    settle(tab)
    where = second.get_by_role("group", name="Where property 1")
    where.get_by_label("Property", exact=True).fill("total")
    where.get_by_label("Operator").select_option("gt")
    settle(tab)
    where.get_by_label("Value type").select_option("number")
    settle(tab)
    where.get_by_label("Value", exact=True).fill("60")
    second.get_by_label("Times").fill("1")
    expect(count).to_have_text("1")  # Margaret: orders of 65 and 80

    # A mistake is shown at its condition and the count waits for it.
    where.get_by_label("Value", exact=True).fill("sixty")
    expect(where.locator(".node-error")).to_have_text("value: must be a number")
    expect(tab.get_by_test_id("segment-error")).to_be_visible()
    where.get_by_label("Value", exact=True).fill("30")
    expect(count).to_have_text("3")
    expect(where.locator(".node-error")).to_have_text("")
    tab.get_by_text("The definition as JSON").click()
    expect(tab.locator("#tree-json")).to_contain_text('"property": "total"')
    tab.evaluate("window.scrollTo(0, 0)")
    shoot(tab, "segment-builder")

    tab.get_by_label("Key").fill("pro-buyers")
    tab.get_by_label("Name", exact=True).fill("Pro plan buyers")
    tab.get_by_role("button", name="Save segment").click()
    tab.wait_for_url(re.compile(r"/segments/seg_"))
    expect(tab.get_by_test_id("member-count")).to_have_text("3")
    expect(tab.get_by_role("table")).to_contain_text("Margaret Hamilton")
