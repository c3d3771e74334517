"""SPEC §4: RFC 8058 one-click unsubscribe — `List-Unsubscribe` + `List-Unsubscribe-Post`.

A GET never changes anything (mail scanners prefetch every link); the POST a mail client sends
opts out at once, and again is harmless. End to end over real HTTP against `shopkeeper serve`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from shopkeeper import clock
from shopkeeper.consent.tokens import make_token, unsubscribe_headers
from shopkeeper.db.session import Database
from tests.conftest import LiveServer, WorkspaceKeys
from tests.consent.factories import consent_log, make_customer, make_topic, set_status, status_of, workspace_row
from tests.consent.html_form import parse, title

MAIL_CLIENT = "ExampleMail/1.0 (one-click)"


@pytest.fixture
def db_url(module_db_url: str) -> str:
    """The tests here share one database and one server, each in a workspace of its own."""
    return module_db_url


@pytest.fixture
def live_server(shared_live_server: LiveServer) -> LiveServer:
    return shared_live_server


@dataclass
class Shop:
    ws: str
    alice: str


@pytest.fixture
def shop(db: Database, workspace: WorkspaceKeys) -> Shop:
    alice = make_customer(db, workspace.id, "alice", email="alice@example.com", phone="+14155550100")
    make_topic(db, workspace.id, "newsletter", channels=("email", "sms"))
    make_topic(db, workspace.id, "offers", channels=("email",))
    set_status(db, workspace.id, alice, "email", "newsletter", "opted_in")
    set_status(db, workspace.id, alice, "email", "offers", "opted_in")
    return Shop(workspace.id, alice)


def headers_for(db: Database, shop: Shop, server: LiveServer, topic: str | None = "newsletter") -> dict[str, str]:
    """The headers the email channel will put on a message, pointing at the running server."""
    return unsubscribe_headers(workspace_row(db, shop.ws), shop.alice, clock.now(), topic=topic, base_url=server.url)


def one_click(url: str, body: str | None = "List-Unsubscribe=One-Click") -> httpx.Response:
    """What a mailbox provider sends (RFC 8058 §3.2)."""
    headers = {"User-Agent": MAIL_CLIENT}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return httpx.post(url, content=body or b"", headers=headers, timeout=10)


def test_a_mail_client_one_click_opts_out_of_the_topic_once(live_server: LiveServer, db: Database, shop: Shop) -> None:
    headers = headers_for(db, shop, live_server)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")

    first = one_click(url)
    assert first.status_code == 200 and title(first.text) == "You are unsubscribed"
    assert status_of(db, shop.ws, shop.alice, "email", "newsletter") == "opted_out"
    assert status_of(db, shop.ws, shop.alice, "email", "offers") == "opted_in"  # only the topic of the link
    assert status_of(db, shop.ws, shop.alice, "email", "*") == "unknown"
    (event,) = [e for e in consent_log(db, shop.ws, shop.alice) if e.source == "unsubscribe-link"]
    assert (event.channel, event.topic, event.status, event.previous_status) == (
        "email",
        "newsletter",
        "opted_out",
        "opted_in",
    )
    assert (event.ip, event.user_agent) == ("127.0.0.1", MAIL_CLIENT)
    assert "One-Click" in (event.wording or "")

    again = one_click(url)  # clients retry; nothing new happens
    assert again.status_code == 200 and title(again.text) == "You are unsubscribed"
    assert len([e for e in consent_log(db, shop.ws, shop.alice) if e.source == "unsubscribe-link"]) == 1


def test_an_empty_post_unsubscribes_too(live_server: LiveServer, db: Database, shop: Shop) -> None:
    url = headers_for(db, shop, live_server)["List-Unsubscribe"].strip("<>")
    assert one_click(url, body=None).status_code == 200
    assert status_of(db, shop.ws, shop.alice, "email", "newsletter") == "opted_out"


def test_get_changes_nothing_and_offers_a_button_and_the_preference_centre(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    url = headers_for(db, shop, live_server)["List-Unsubscribe"].strip("<>")
    for _ in range(3):  # a scanner, a preview, the person
        r = httpx.get(url, timeout=10)
        assert r.status_code == 200 and title(r.text) == "Unsubscribe from Newsletter?"
    assert status_of(db, shop.ws, shop.alice, "email", "newsletter") == "opted_in"
    assert [e.source for e in consent_log(db, shop.ws, shop.alice)] == ["api", "api"]

    page = parse(r.text)
    (button,) = page.form.buttons
    links = re.findall(r'href="(/preferences/[^"]+)"', r.text)
    assert len(links) == 1
    preferences = httpx.get(f"{live_server.url}{links[0]}", timeout=10)
    assert preferences.status_code == 200 and title(preferences.text) == "Your communication preferences"

    # The person presses the button: a plain form post to the same address.
    pressed = httpx.post(url, data=dict(page.form.data()), headers={"User-Agent": "Browser"}, timeout=10)
    assert pressed.status_code == 200 and title(pressed.text) == "You are unsubscribed"
    (event,) = [e for e in consent_log(db, shop.ws, shop.alice) if e.source == "unsubscribe-link"]
    assert event.wording == button
    assert title(httpx.get(url, timeout=10).text) == "You are unsubscribed"


def test_a_link_without_a_topic_stops_the_whole_channel(live_server: LiveServer, db: Database, shop: Shop) -> None:
    url = headers_for(db, shop, live_server, topic=None)["List-Unsubscribe"].strip("<>")
    assert title(httpx.get(url, timeout=10).text) == "Stop all emails from " + workspace_row(db, shop.ws).name + "?"
    assert one_click(url).status_code == 200
    assert status_of(db, shop.ws, shop.alice, "email", "*") == "opted_out"
    assert status_of(db, shop.ws, shop.alice, "email", "newsletter") == "opted_in"  # kept, but silenced


@pytest.mark.parametrize("how", ["tampered", "expired", "wrong purpose"])
def test_a_bad_unsubscribe_link_changes_nothing(live_server: LiveServer, db: Database, shop: Shop, how: str) -> None:
    ws = workspace_row(db, shop.ws)
    good = make_token(ws, shop.alice, "unsubscribe", clock.now(), data={"ch": "email", "t": "newsletter"})
    token = {
        "tampered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "expired": make_token(
            ws, shop.alice, "unsubscribe", clock.now() - timedelta(days=61), data={"ch": "email", "t": "newsletter"}
        ),
        "wrong purpose": make_token(ws, shop.alice, "preferences", clock.now()),
    }[how]
    r = one_click(f"{live_server.url}/unsubscribe/{token}")
    assert r.status_code == (410 if how == "expired" else 400)
    assert r.headers["content-type"].startswith("text/html") and "Traceback" not in r.text
    assert status_of(db, shop.ws, shop.alice, "email", "newsletter") == "opted_in"
    assert [e.source for e in consent_log(db, shop.ws, shop.alice)] == ["api", "api"]


def test_a_topic_gone_since_the_message_was_sent_still_unsubscribes(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    token = make_token(
        workspace_row(db, shop.ws), shop.alice, "unsubscribe", clock.now(), data={"ch": "email", "t": "old"}
    )
    assert one_click(f"{live_server.url}/unsubscribe/{token}").status_code == 200
    assert status_of(db, shop.ws, shop.alice, "email", "*") == "opted_out"


def test_a_page_cannot_be_framed_or_cached(live_server: LiveServer, db: Database, shop: Shop) -> None:
    url = headers_for(db, shop, live_server)["List-Unsubscribe"].strip("<>")
    r = httpx.get(url, timeout=10)
    assert r.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
