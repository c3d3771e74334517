"""Browser tests: Debian's Chromium driven headless by Playwright against a real `shopkeeper
serve` on loopback, with its own SQLite database, seeded through the same services the API uses.

Run with SHOPKEEPER_SCREENSHOTS=1 to (re)write the screenshots under docs/screenshots/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shopkeeper import clock
from shopkeeper.auth.service import create_user, create_workspace
from shopkeeper.db.migrate import upgrade
from shopkeeper.db.session import Database
from tests.conftest import LiveServer, start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
EMAIL = "owner@example.com"
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@dataclass
class Shop:
    url: str
    db: Database
    workspace_id: str
    write_key: str
    secret_key: str
    server: LiveServer


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{folder / 'shop.db'}"
    upgrade(url)
    db = Database(url)
    with db.session(write=True) as s:
        workspace, write_key, secret_key = create_workspace(s, "Corner Shop", clock.now())
        create_user(s, workspace.id, email=EMAIL, role="owner", name="Olive Owner", password=PASSWORD, now=clock.now())
        workspace_id = workspace.id
    server = start_server(url, folder / "server.log", SHOPKEEPER_PUBLIC_URL="http://127.0.0.1")
    try:
        yield Shop(server.url, db, workspace_id, write_key, secret_key, server)
    finally:
        server.stop()
        db.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object, shop: Shop) -> Iterator[object]:
    """A fresh browser context, logged in as the workspace's owner."""
    context = browser.new_context(base_url=shop.url, viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.goto("/login")
    tab.get_by_label("Email").fill(EMAIL)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"{shop.url}/")
    try:
        yield tab
    finally:
        context.close()


def shoot(page: object, name: str) -> None:
    """A full-page screenshot for the docs, only when asked (CI never rewrites committed files)."""
    if os.environ.get("SHOPKEEPER_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
