"""SPEC §5 "messages appear live on both sides", in a real browser (Debian's Chromium driven by
Playwright): a shop page on its own origin embeds the widget with one script tag and talks to a
real `shopkeeper serve` process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shopkeeper.db.session import Database
from tests.channels.chat.helpers import customer_of, interaction, reply, send_of, token_for
from tests.conftest import LiveServer, WorkspaceKeys

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")


@pytest.fixture
def db_url(module_db_url: str) -> str:
    """The tests here share one database and one server, each in a workspace of its own."""
    return module_db_url


@pytest.fixture
def live_server(shared_live_server: LiveServer) -> LiveServer:
    return shared_live_server


class ShopPage:
    """The shop's own site: a loopback server on another port (so another origin) with one page."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def shop_page(server: LiveServer, attributes: str) -> ShopPage:
    return ShopPage(
        "<!doctype html><html><head><title>Acme shop</title></head><body><h1>Acme</h1>"
        f'<script src="{server.url}/chat/widget.js" {attributes}></script></body></html>'
    )


def test_a_visitor_and_an_agent_talk_live_through_the_widget(
    live_server: LiveServer, workspace: WorkspaceKeys, db: Database, browser: Any
) -> None:
    page_server = shop_page(live_server, f'data-write-key="{workspace.write_key}" data-title="Acme help"')
    try:
        page = browser.new_page()
        page.goto(page_server.url)
        page.click("#shopkeeper-chat .sk-launcher")
        page.wait_for_selector("#shopkeeper-chat .sk-status:text('online')")
        assert page.inner_text("#shopkeeper-chat .sk-title") == "Acme help"

        # The visitor types; the bubble gets its interaction id once the server has stored it.
        page.fill("#shopkeeper-chat .sk-input", "Do you ship to Norway?")
        page.press("#shopkeeper-chat .sk-input", "Enter")
        mine = page.wait_for_selector("#shopkeeper-chat .sk-msg.sk-in[data-id]")
        stored = interaction(db, mine.get_attribute("data-id"))
        assert (stored.channel, stored.direction, stored.text) == ("chat", "in", "Do you ship to Norway?")
        anonymous_id = page.evaluate("localStorage.getItem('shopkeeper_chat_anonymous_id')")
        assert stored.address == anonymous_id and anonymous_id.startswith("anon-")

        # An agent answers through the outbox; the server's worker hands it to the open socket.
        customer_id = customer_of(db, workspace.id, "anonymous_id", anonymous_id)
        send_id = reply(db, workspace.id, customer_id, "Yes, in 3 to 5 days.")
        answer = page.wait_for_selector("#shopkeeper-chat .sk-msg.sk-out:text('Yes, in 3 to 5 days.')")
        assert answer.get_attribute("data-id") == send_of(db, send_id).interaction_id
        deadline = time.monotonic() + 10  # the open panel reports it read
        while send_of(db, send_id).status != "opened":
            assert time.monotonic() < deadline, f"status stayed {send_of(db, send_id).status}"
            time.sleep(0.05)

        # A reload (a new page of the shop) replays the conversation from the server.
        page.reload()
        page.click("#shopkeeper-chat .sk-launcher")
        page.wait_for_selector("#shopkeeper-chat .sk-msg.sk-out")
        texts = page.locator("#shopkeeper-chat .sk-msg").all_inner_texts()
        assert texts == ["Do you ship to Norway?", "Yes, in 3 to 5 days."]
    finally:
        page_server.stop()


def test_a_reply_while_the_panel_is_closed_shows_an_unread_badge_and_a_signed_in_user_is_verified(
    live_server: LiveServer, workspace: WorkspaceKeys, db: Database, browser: Any
) -> None:
    token = token_for(db, workspace.id, "user-9")
    page_server = shop_page(
        live_server, f'data-write-key="{workspace.write_key}" data-user-id="user-9" data-user-token="{token}"'
    )
    try:
        page = browser.new_page()
        page.goto(page_server.url)
        page.evaluate("window.ShopkeeperChat.send('Signed in and asking')")
        page.wait_for_selector("#shopkeeper-chat .sk-msg.sk-in[data-id]", state="attached")
        customer_id = customer_of(db, workspace.id, "user_id", "user-9")
        send_id = reply(db, workspace.id, customer_id, "Welcome back")
        page.wait_for_selector("#shopkeeper-chat .sk-badge:text('1')")
        deadline = time.monotonic() + 10  # shown, not yet read
        while send_of(db, send_id).status != "delivered":
            assert time.monotonic() < deadline, f"status stayed {send_of(db, send_id).status}"
            time.sleep(0.05)
        page.click("#shopkeeper-chat .sk-launcher")
        deadline = time.monotonic() + 10
        while send_of(db, send_id).status != "opened":
            assert time.monotonic() < deadline, f"status stayed {send_of(db, send_id).status}"
            time.sleep(0.05)
        assert not page.is_visible("#shopkeeper-chat .sk-badge")
    finally:
        page_server.stop()
