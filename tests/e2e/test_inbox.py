"""The issue's "answer a chat that arrives over the WebSocket while the page is open", in a real
browser against a real server: the inbox is open; a shopper writes on the chat socket; the
conversation appears in the list with no reload; the agent opens it, the shopper writes again
and that appears in the open thread; the agent replies from the browser and the shopper's
socket receives the answer."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.db.session import Database
from shopkeeper.inbox import hooks as _hooks  # noqa: F401 - messages seeded here join conversations
from shopkeeper.inbox.models import TriageTask
from shopkeeper.messaging import inbound
from tests.channels.chat.helpers import receive, receive_type, say, socket, token_for
from tests.e2e.conftest import Shop, shoot
from tests.helpers import ingest, message
from tests.inbox.factories import make_policy

MAYA = "u-maya"


def _customer(shop: Shop, user_id: str, traits: dict[str, Any], orders: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
    payloads = [message("identify", userId=user_id, traits=traits)]
    payloads += [message("track", userId=user_id, event="Order Completed", properties=o) for o in orders]
    ingest(shop.db, shop.workspace_id, payloads)


def _inbound(db: Database, workspace_id: str, channel: str, kind: str, address: str, text: str) -> None:
    with db.session(write=True) as s:
        inbound.receive(s, workspace_id, channel=channel, kind=kind, address=address, text=text, now=clock.now())


def _seed(shop: Shop) -> None:
    """A shop's morning: a few conversations already waiting, and Maya, who will use the chat."""
    make_policy(shop.db, shop.workspace_id, "standard", first_response_minutes=240, resolution_minutes=2880)
    _customer(shop, "u-tom", {"first_name": "Tom", "last_name": "Baker", "phone": "+447911123456"})
    _customer(shop, "u-ines", {"first_name": "Inès", "last_name": "Moreau", "email": "ines@example.com"})
    _customer(shop, "u-raj", {"first_name": "Raj", "last_name": "Patel", "phone": "+447911123457"})
    _customer(
        shop,
        MAYA,
        {"first_name": "Maya", "last_name": "Okafor", "email": "maya@example.com", "city": "Leeds", "plan": "gold"},
        [
            {"order_id": "1042", "total": 189.0, "currency": "GBP", "products": [{"sku": "oak-chair"}] * 2},
            {"order_id": "1107", "total": 64.5, "currency": "GBP", "products": [{"sku": "lamp"}]},
        ],
    )
    _inbound(
        shop.db, shop.workspace_id, "sms", "phone", "+447911123456", "Where is my order 1093? It was due yesterday."
    )
    _inbound(
        shop.db,
        shop.workspace_id,
        "email",
        "email",
        "ines@example.com",
        "Hello, I was charged twice for my last order. Could you refund the second payment please?",
    )
    _inbound(
        shop.db,
        shop.workspace_id,
        "whatsapp",
        "phone",
        "+447911123457",
        "The lamp arrived today, it is lovely. Thanks!",
    )


def _triaged(shop: Shop, timeout: float = 30) -> None:
    """Wait for the server's inbox worker to classify and route what is waiting (its first
    round loads the model)."""
    deadline = time.monotonic() + timeout
    while True:
        with shop.db.session() as s:
            if s.scalar(select(TriageTask.id).where(TriageTask.done_at.is_(None)).limit(1)) is None:
                return
        assert time.monotonic() < deadline, "the inbox worker did not triage the seeded messages"
        time.sleep(0.1)


def test_a_chat_arriving_over_the_websocket_appears_live_and_is_answered_from_the_browser(
    page: Any, shop: Shop
) -> None:
    _seed(shop)
    _triaged(shop)
    tab = page
    tab.goto("/inbox")
    expect(tab.get_by_role("heading", name="Inbox")).to_be_visible()
    rows = tab.locator("#conversation-list li.conversation")
    expect(rows).to_have_count(3)
    expect(tab.locator("#live-status")).to_have_attribute("data-state", "live")

    params = {"write_key": shop.write_key, "user_id": MAYA, "user_token": token_for(shop.db, shop.workspace_id, MAYA)}
    with socket(shop.url, **params) as ws:
        receive(ws)
        say(ws, type="message", text="Hi! Is the oak dining table still in stock?", client_id="c-1")
        receive_type(ws, "stored")

        # The open list shows it without a reload.
        row = rows.filter(has_text="Is the oak dining table still in stock?")
        expect(row).to_be_visible()
        expect(row).to_contain_text("Maya Okafor")
        expect(row).to_contain_text("chat")
        expect(rows).to_have_count(4)
        expect(row).to_contain_text("SLA ok", timeout=20_000)  # classified and routed: live too
        shoot(tab, "inbox")

        row.get_by_role("link").click()
        tab.wait_for_url(re.compile(r"/inbox/[^/]+$"))
        expect(tab.get_by_role("heading", level=1, name="Maya Okafor")).to_be_visible()
        expect(tab.locator(".profile")).to_contain_text("#1042")
        expect(tab.locator("#live-status")).to_have_attribute("data-state", "live")
        expect(tab.get_by_label("Reply on")).to_have_value("chat")  # the customer's last channel

        # The shopper writes again: it joins the open thread, live.
        say(ws, type="message", text="The 180 cm one, in oak.", client_id="c-2")
        receive_type(ws, "stored")
        expect(tab.locator("#thread-log")).to_contain_text("The 180 cm one, in oak.")

        tab.get_by_label("Message").fill("Yes, we have two left in oak. Shall I hold one for you?")
        tab.get_by_role("button", name="Send reply").click()
        expect(tab.locator("#inbox-notice")).to_contain_text("Reply queued on chat.")
        expect(tab.get_by_label("Message")).to_have_value("")  # a fresh reply box
        expect(tab.locator("#thread-log .message.out")).to_contain_text("Shall I hold one for you?")

        pushed = receive_type(ws, "message", timeout=20)["message"]
        assert pushed["direction"] == "out"
        assert pushed["text"] == "Yes, we have two left in oak. Shall I hold one for you?"

        tab.get_by_label("Internal note").fill("Gold customer: offer free delivery if she orders today.")
        tab.get_by_role("button", name="Add note").click()
        expect(tab.locator("#thread-log .message.note")).to_contain_text("free delivery")
        shoot(tab, "inbox-thread")


def test_a_refused_reply_is_shown_beside_the_form_and_keeps_what_was_typed(page: Any, shop: Shop) -> None:
    tab = page
    tab.goto("/inbox?status=")
    tab.locator("#conversation-list li.conversation a").first.click()
    tab.wait_for_url(re.compile(r"/inbox/[^/]+$"))
    tab.get_by_label("Subject").fill("About your order")
    tab.get_by_role("button", name="Send reply").click()  # with no message
    expect(tab.locator("#reply-form-error")).to_contain_text("empty reply")
    expect(tab.get_by_label("Subject")).to_have_value("About your order")
    tab.get_by_label("Message").fill("It left our warehouse this morning.")
    tab.get_by_role("button", name="Send reply").click()
    expect(tab.locator("#inbox-notice")).to_contain_text("Reply queued")
    expect(tab.locator("#reply-form-error")).to_be_hidden()
