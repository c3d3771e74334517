"""Logging in through the browser and reading the dashboard."""

from __future__ import annotations

from tests.e2e.conftest import Shop, shoot


def test_log_in_and_see_the_dashboard(page: object, shop: Shop) -> None:
    tab = page
    heading = tab.get_by_role("heading", name="Dashboard")  # type: ignore[attr-defined]
    assert heading.is_visible()
    assert tab.get_by_role("navigation", name="Main").is_visible()  # type: ignore[attr-defined]
    assert tab.locator("canvas[data-drawn]").count() == 2  # type: ignore[attr-defined]  # both charts drawn
    shoot(tab, "dashboard")
