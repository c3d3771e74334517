"""In the browser: settings — create an API key (its plain text shown once, then only its prefix)
and add a subscription topic."""

from __future__ import annotations

import re

import httpx

from tests.e2e.conftest import Shop, shoot


def test_create_an_api_key_shown_once_and_add_a_topic(page: object, shop: Shop) -> None:
    tab = page
    tab.goto("/settings")  # type: ignore[attr-defined]
    nav = tab.get_by_role("navigation", name="Settings")  # type: ignore[attr-defined]
    assert nav.get_by_role("link", name="Channels and providers").get_attribute("aria-current") == "page"

    nav.get_by_role("link", name="API keys").click()
    tab.get_by_label("Name").fill("order service")  # type: ignore[attr-defined]
    tab.get_by_label("Kind").select_option("secret")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Create key").click()  # type: ignore[attr-defined]
    tab.get_by_role("heading", name=re.compile("Your new secret key")).wait_for()  # type: ignore[attr-defined]
    key = tab.get_by_label("Key", exact=True).input_value()  # type: ignore[attr-defined]
    assert key.startswith("sk_")
    row = tab.get_by_role("row", name=re.compile("order service"))  # type: ignore[attr-defined]
    assert key[:10] in row.inner_text() and "active" in row.inner_text()
    answer = httpx.get(f"{shop.url}/api/v1/workspace", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 200
    shoot(tab, "settings")

    # Shown once: the list, opened again, has its prefix only.
    tab.goto("/settings/api-keys")  # type: ignore[attr-defined]
    assert tab.get_by_role("row", name=re.compile("order service")).is_visible()  # type: ignore[attr-defined]
    assert key not in tab.content()  # type: ignore[attr-defined]

    tab.get_by_role("navigation", name="Settings").get_by_role("link", name="Topics").click()  # type: ignore[attr-defined]
    tab.get_by_label("Key").fill("newsletter")  # type: ignore[attr-defined]
    tab.get_by_label("Name").fill("Newsletter")  # type: ignore[attr-defined]
    tab.get_by_label("Purpose").fill("News from the shop, once a week")  # type: ignore[attr-defined]
    tab.get_by_label("Lawful basis").select_option("consent")  # type: ignore[attr-defined]
    channels = tab.get_by_role("group", name="Channels")  # type: ignore[attr-defined]
    channels.get_by_label("email", exact=True).check()
    tab.get_by_label(re.compile("Double opt-in")).check()  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Add topic").click()  # type: ignore[attr-defined]
    tab.get_by_role("status").filter(has_text="Topic added.").wait_for()  # type: ignore[attr-defined]
    topic = tab.get_by_role("row", name=re.compile("newsletter"))  # type: ignore[attr-defined]
    assert "News from the shop" in topic.inner_text() and "consent" in topic.inner_text()
