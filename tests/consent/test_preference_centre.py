"""SPEC §4: the preference centre — a public page reached by a signed, expiring link, no login;
the customer sees and changes each channel/topic, preferred channel, frequency and quiet hours.

End to end over real HTTP against `shopkeeper serve`, posting the page's own form the way a
browser without JavaScript does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from shopkeeper import clock
from shopkeeper.consent import service
from shopkeeper.consent.double_opt_in import OptInRequest, on_opt_in_requested
from shopkeeper.consent.tokens import make_token
from shopkeeper.db.session import Database
from tests.conftest import LiveServer, WorkspaceKeys
from tests.consent.factories import (
    consent_log,
    make_customer,
    make_topic,
    set_status,
    status_of,
    workspace_row,
)
from tests.consent.html_form import parse

BROWSER = "Mozilla/5.0 (test; no JavaScript)"


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
    token: str


@pytest.fixture
def shop(db: Database, workspace: WorkspaceKeys) -> Shop:
    alice = make_customer(db, workspace.id, "alice", email="alice@example.com", phone="+14155550100")
    make_topic(db, workspace.id, "newsletter", channels=("email", "sms"))
    make_topic(db, workspace.id, "offers", channels=("email",), double_opt_in=True)
    make_topic(db, workspace.id, "tips", lawful_basis="legitimate_interest", channels=("email",))
    set_status(db, workspace.id, alice, "email", "newsletter", "opted_in")
    token = make_token(workspace_row(db, workspace.id), alice, "preferences", clock.now())
    return Shop(workspace.id, alice, token)


def get(server: LiveServer, path: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"User-Agent": BROWSER}, timeout=10)


def post(server: LiveServer, path: str, data: list[tuple[str, str]] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", data=dict(data or []), headers={"User-Agent": BROWSER}, timeout=10)


def test_the_page_shows_every_reachable_channel_with_its_topics_and_their_status(
    live_server: LiveServer, shop: Shop
) -> None:
    r = get(live_server, f"/preferences/{shop.token}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    page = parse(r.text)
    legends = re.findall(r"<legend>(.*?)(?:<| *</legend>)", r.text)
    assert {"Email", "Text messages (SMS)", "In-app and web chat"} <= {legend.strip() for legend in legends}
    assert "Push notifications" not in legends  # no device token: not reachable by push
    topic_boxes = [i.name for i in page.form.inputs if i.type == "checkbox" and i.name.startswith("topic:")]
    assert topic_boxes == ["topic:email:newsletter", "topic:email:offers", "topic:email:tips", "topic:sms:newsletter"]
    assert page.form.is_checked("topic:email:newsletter")  # opted in
    assert not page.form.is_checked("topic:email:offers")  # consent, nothing chosen yet
    assert page.form.is_checked("topic:email:tips")  # legitimate interest: on unless opted out
    assert not page.form.is_checked("stop:email")
    assert "a•••@example.com" in page.text and "alice@example.com" not in r.text
    assert page.says("Status: subscribed") and page.says("Status: not chosen yet")


def test_changes_made_with_plain_form_posts_land_in_the_consent_log(
    live_server: LiveServer, db: Database, shop: Shop
) -> None:
    page = parse(get(live_server, f"/preferences/{shop.token}").text)
    form = page.form
    assert form.action is None  # posts back to the same signed address
    form.tick("topic:email:newsletter", False)
    form.tick("topic:email:tips", False)
    form.tick("topic:sms:newsletter")
    form.choose("frequency", "weekly")
    form.choose("preferred_channel", "sms")
    form.fill("quiet_start", "22:00")
    form.fill("quiet_end", "07:30")

    r = post(live_server, f"/preferences/{shop.token}", form.data())
    assert r.status_code == 200, r.text
    assert parse(r.text).says("Your choices are saved")

    log = {(e.channel, e.topic): e for e in consent_log(db, shop.ws, shop.alice) if e.source == "preference-centre"}
    assert set(log) == {("email", "newsletter"), ("email", "tips"), ("sms", "newsletter")}
    for (channel, topic), event in log.items():
        assert event.wording == page.label_of(f"topic:{channel}:{topic}")
        assert (event.ip, event.user_agent) == ("127.0.0.1", BROWSER)
    assert (log[("email", "newsletter")].status, log[("email", "newsletter")].previous_status) == (
        "opted_out",
        "opted_in",
    )
    assert log[("email", "tips")].status == "opted_out"
    assert log[("sms", "newsletter")].status == "opted_in"
    # A box the customer did not touch keeps its state: "not chosen yet" is not an opt-out.
    assert status_of(db, shop.ws, shop.alice, "email", "offers") == "unknown"
    with db.session() as s:
        preference = service.preference_of(s, shop.ws, shop.alice)
    assert preference is not None
    assert (preference.preferred_channel, preference.frequency) == ("sms", "weekly")
    assert (preference.quiet_start, preference.quiet_end) == ("22:00", "07:30")

    again = parse(r.text).form  # the page shown after saving reflects what was saved
    assert not again.is_checked("topic:email:newsletter") and again.is_checked("topic:sms:newsletter")
    assert again.is_checked("frequency", "weekly") and again.is_checked("preferred_channel", "sms")
    # Saving the same page again changes nothing.
    before = len(consent_log(db, shop.ws, shop.alice))
    assert post(live_server, f"/preferences/{shop.token}", again.data()).status_code == 200
    assert len(consent_log(db, shop.ws, shop.alice)) == before


def test_stop_everything_on_a_channel_and_take_it_back(live_server: LiveServer, db: Database, shop: Shop) -> None:
    page = parse(get(live_server, f"/preferences/{shop.token}").text)
    page.form.tick("stop:email")
    assert post(live_server, f"/preferences/{shop.token}", page.form.data()).status_code == 200
    assert status_of(db, shop.ws, shop.alice, "email", "*") == "opted_out"
    (event,) = [e for e in consent_log(db, shop.ws, shop.alice) if e.topic == "*"]
    assert event.wording == page.label_of("stop:email") and "including order and account messages" in event.wording
    # Topic choices are kept as they were; only the channel is silenced.
    assert status_of(db, shop.ws, shop.alice, "email", "newsletter") == "opted_in"

    page = parse(get(live_server, f"/preferences/{shop.token}").text)
    assert page.form.is_checked("stop:email")
    page.form.tick("stop:email", False)
    assert post(live_server, f"/preferences/{shop.token}", page.form.data()).status_code == 200
    assert status_of(db, shop.ws, shop.alice, "email", "*") == "unknown"


def test_a_bad_form_saves_nothing_at_all(live_server: LiveServer, db: Database, shop: Shop) -> None:
    page = parse(get(live_server, f"/preferences/{shop.token}").text)
    page.form.tick("topic:email:newsletter", False)
    page.form.fill("quiet_start", "22:00")  # and no end
    r = post(live_server, f"/preferences/{shop.token}", page.form.data())
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert parse(r.text).says("Nothing was saved") and parse(r.text).says("quiet hours")
    assert status_of(db, shop.ws, shop.alice, "email", "newsletter") == "opted_in"
    assert [e.source for e in consent_log(db, shop.ws, shop.alice)] == ["api"]


@pytest.mark.parametrize("how", ["tampered", "expired", "wrong purpose", "garbage"])
def test_a_bad_link_gets_a_clear_page_and_changes_nothing(
    live_server: LiveServer, db: Database, shop: Shop, how: str
) -> None:
    ws = workspace_row(db, shop.ws)
    token = {
        "tampered": shop.token[:-4] + ("AAAA" if not shop.token.endswith("AAAA") else "BBBB"),
        "expired": make_token(ws, shop.alice, "preferences", clock.now() - timedelta(days=61)),
        "wrong purpose": make_token(ws, shop.alice, "unsubscribe", clock.now(), data={"ch": "email", "t": "*"}),
        "garbage": "not-a-token",
    }[how]
    expected = {"tampered": 400, "expired": 410, "wrong purpose": 400, "garbage": 400}[how]
    title = {
        "tampered": "This link does not work",
        "expired": "This link has expired",
        "wrong purpose": "This link is meant for another page",
        "garbage": "This link does not work",
    }[how]
    shown = get(live_server, f"/preferences/{token}")
    assert shown.status_code == expected and shown.headers["content-type"].startswith("text/html")
    assert f"<h1>{title}</h1>" in shown.text and "Traceback" not in shown.text
    posted = post(live_server, f"/preferences/{token}", [("stop:email", "on"), ("was:stop:email", "0")])
    assert posted.status_code == expected and f"<h1>{title}</h1>" in posted.text
    assert status_of(db, shop.ws, shop.alice, "email", "*") == "unknown"
    assert [e.source for e in consent_log(db, shop.ws, shop.alice)] == ["api"]


def test_a_link_of_workspace_a_cannot_open_a_customer_of_workspace_b(
    live_server: LiveServer,
    db: Database,
    make_workspace: Callable[[str], WorkspaceKeys],
    shop: Shop,
) -> None:
    a = workspace_row(db, make_workspace("A").id)
    forged = make_token(a, shop.alice, "preferences", clock.now())  # genuine signature of A, B's customer
    for r in (
        get(live_server, f"/preferences/{forged}"),
        post(live_server, f"/preferences/{forged}", [("stop:email", "on"), ("was:stop:email", "0")]),
    ):
        assert r.status_code == 410 and "a•••@example.com" not in r.text and "alice" not in r.text
    assert consent_log(db, a.id) == [] and status_of(db, shop.ws, shop.alice, "email", "*") == "unknown"


def test_the_page_is_usable_without_javascript_and_with_assistive_technology(
    live_server: LiveServer, shop: Shop
) -> None:
    html = get(live_server, f"/preferences/{shop.token}").text
    page = parse(html)
    assert "<script" not in html.lower()
    assert 'name="viewport"' in html and 'lang="en"' in html
    for field in page.form.inputs:
        if field.type in ("checkbox", "radio", "time"):
            assert field.id and page.labels.get(field.id), f"{field.name} has no label"
    assert html.count("<fieldset>") == html.count("<legend>") >= 6
    assert page.form.buttons == ["Save my choices"]


def test_ticking_a_double_opt_in_topic_asks_for_confirmation_instead(
    app_client: httpx.Client, db: Database, shop: Shop
) -> None:
    requests: list[OptInRequest] = []
    remove = on_opt_in_requested(lambda _session, request: requests.append(request))
    try:
        page = parse(app_client.get(f"/preferences/{shop.token}").text)
        page.form.tick("topic:email:offers")
        r = app_client.post(f"/preferences/{shop.token}", data=dict(page.form.data()))
    finally:
        remove()
    assert r.status_code == 200
    assert parse(r.text).says("starts once you confirm it")
    assert status_of(db, shop.ws, shop.alice, "email", "offers") == "pending"
    (request,) = requests
    assert (request.customer_id, request.topic, request.status) == (shop.alice, "offers", "pending")
    assert request.confirm_url and "/consent/confirm/" in request.confirm_url
    (event,) = [e for e in consent_log(db, shop.ws, shop.alice) if e.topic == "offers"]
    assert (event.source, event.wording) == ("preference-centre", page.label_of("topic:email:offers"))
