"""SPEC §4: email double opt-in — `pending` until the customer confirms by the signed link, and
no marketing before that."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import update

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.consent.double_opt_in import OptInRequest, on_opt_in_requested, request_opt_in
from shopkeeper.consent.models import Topic
from shopkeeper.consent.policy import can_contact
from shopkeeper.consent.service import Proof
from shopkeeper.consent.tokens import make_token
from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid
from tests.conftest import WorkspaceKeys
from tests.consent.factories import consent_log, make_customer, make_topic, set_status, status_of, workspace_row
from tests.consent.html_form import parse, title

NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def requests() -> Iterator[list[OptInRequest]]:
    """What the email channel would be asked to send."""
    seen: list[OptInRequest] = []
    remove = on_opt_in_requested(lambda _session, request: seen.append(request))
    try:
        yield seen
    finally:
        remove()


@pytest.fixture
def alice(db: Database, workspace: WorkspaceKeys) -> str:
    customer = make_customer(db, workspace.id, "alice", email="alice@example.com", phone="+14155550100")
    make_topic(db, workspace.id, "newsletter", channels=("email", "sms"), double_opt_in=True)
    make_topic(db, workspace.id, "offers", channels=("email",))
    return customer


def ask(db: Database, ws_id: str, customer: str, topic: str = "newsletter", channel: str = "email") -> OptInRequest:
    ws = workspace_row(db, ws_id)
    with db.session(write=True) as s:
        proof = Proof(source="api", wording="Send me the newsletter", ip="203.0.113.9")
        return request_opt_in(s, ws, customer, channel, topic, proof, clock.now(), base_url="https://shop.example")


def decision(db: Database, ws: str, customer: str, topic: str = "newsletter") -> str:
    with db.session() as s:
        return can_contact(s, ws, customer, "email", topic, "marketing", NOON).reason


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_pending_then_confirmed_and_only_then_contactable(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, alice: str, requests: list[OptInRequest]
) -> None:
    request = ask(db, workspace.id, alice)
    assert request.status == "pending" and request.needs_confirmation
    assert request.confirm_url is not None and request.confirm_url.startswith("https://shop.example/consent/confirm/")
    assert requests == [request]  # the email channel is told, after the status is recorded
    assert status_of(db, workspace.id, alice, "email", "newsletter") == "pending"
    assert decision(db, workspace.id, alice) == "pending_confirmation"

    page = app_client.get(path_of(request.confirm_url))
    assert page.status_code == 200 and title(page.text) == "Confirm your subscription to Newsletter"
    assert status_of(db, workspace.id, alice, "email", "newsletter") == "pending"  # GET changed nothing
    form = parse(page.text).form
    (button,) = form.buttons

    done = app_client.post(path_of(request.confirm_url), data=dict(form.data()))
    assert done.status_code == 200 and title(done.text) == "You are subscribed to Newsletter"
    assert status_of(db, workspace.id, alice, "email", "newsletter") == "opted_in"
    assert decision(db, workspace.id, alice) == "ok"
    confirmed = [e for e in consent_log(db, workspace.id, alice) if e.source == "double-opt-in"]
    assert [(e.status, e.previous_status, e.wording) for e in confirmed] == [("opted_in", "pending", button)]
    assert confirmed[0].ip == "testclient"

    again = app_client.post(path_of(request.confirm_url), data=dict(form.data()))
    assert again.status_code == 200 and title(again.text) == "You are subscribed to Newsletter"
    assert len([e for e in consent_log(db, workspace.id, alice) if e.source == "double-opt-in"]) == 1


def test_an_expired_confirmation_says_so_and_offers_a_new_link(
    app_client: httpx.Client,
    db: Database,
    workspace: WorkspaceKeys,
    alice: str,
    requests: list[OptInRequest],
    frozen_clock: FrozenClock,
) -> None:
    first = ask(db, workspace.id, alice)
    assert first.confirm_url is not None
    frozen_clock.advance(timedelta(days=7, seconds=1))

    page = app_client.get(path_of(first.confirm_url))
    assert page.status_code == 410 and title(page.text) == "This confirmation link has expired"
    form = parse(page.text).form
    assert form.buttons == ["Send me a new confirmation link"]
    confirm_anyway = app_client.post(path_of(first.confirm_url), data={"action": "confirm"})
    assert confirm_anyway.status_code == 410
    assert status_of(db, workspace.id, alice, "email", "newsletter") == "pending"

    resent = app_client.post(path_of(first.confirm_url), data=dict(form.data()))
    assert resent.status_code == 200 and title(resent.text) == "A new link is on its way"
    assert len(requests) == 2
    fresh = requests[1].confirm_url
    assert fresh is not None and fresh != first.confirm_url
    assert app_client.post(path_of(fresh), data={"action": "confirm"}).status_code == 200
    assert status_of(db, workspace.id, alice, "email", "newsletter") == "opted_in"


def test_without_double_opt_in_an_opt_in_is_immediate(
    db: Database, workspace: WorkspaceKeys, alice: str, requests: list[OptInRequest]
) -> None:
    plain = ask(db, workspace.id, alice, topic="offers")
    assert (plain.status, plain.confirm_url) == ("opted_in", None)
    assert status_of(db, workspace.id, alice, "email", "offers") == "opted_in"
    # Double opt-in is an email procedure: the same topic on SMS opts in directly.
    by_sms = ask(db, workspace.id, alice, channel="sms")
    assert by_sms.status == "opted_in" and status_of(db, workspace.id, alice, "sms", "newsletter") == "opted_in"
    assert requests == []
    (event,) = [e for e in consent_log(db, workspace.id, alice) if e.topic == "offers"]
    assert (event.source, event.wording, event.ip) == ("api", "Send me the newsletter", "203.0.113.9")


def test_asking_again_never_downgrades_consent(
    db: Database, workspace: WorkspaceKeys, alice: str, requests: list[OptInRequest]
) -> None:
    set_status(db, workspace.id, alice, "email", "newsletter", "opted_in")
    again = ask(db, workspace.id, alice)
    assert (again.status, again.confirm_url, again.consent_event_id) == ("opted_in", None, None)
    assert status_of(db, workspace.id, alice, "email", "newsletter") == "opted_in" and requests == []


def test_a_confirmation_link_only_confirms(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, alice: str, requests: list[OptInRequest]
) -> None:
    request = ask(db, workspace.id, alice)
    assert request.confirm_url is not None
    token = path_of(request.confirm_url).rsplit("/", 1)[1]
    for path in (f"/preferences/{token}", f"/unsubscribe/{token}"):
        r = app_client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 400 and title(r.text) == "This link is meant for another page"
    preferences = make_token(workspace_row(db, workspace.id), alice, "preferences", clock.now())
    r = app_client.post(f"/consent/confirm/{preferences}", data={"action": "confirm"})
    assert r.status_code == 400
    assert status_of(db, workspace.id, alice, "email", "newsletter") == "pending"
    assert status_of(db, workspace.id, alice, "email", "*") == "unknown"


def test_nobody_opts_in_to_an_archived_topic(
    db: Database, workspace: WorkspaceKeys, alice: str, requests: list[OptInRequest]
) -> None:
    with db.session(write=True) as s:
        offers = update(Topic).where(Topic.workspace_id == workspace.id, Topic.key == "offers")
        s.execute(offers.values(archived_at=NOON))
    with pytest.raises(Invalid):
        ask(db, workspace.id, alice, topic="offers")
    assert status_of(db, workspace.id, alice, "email", "offers") == "unknown" and requests == []
