"""The inbox in the browser, through the app: the list and its filters, a thread beside the
customer's profile, every action as htmx sends it (each whole or not at all, refusals beside
their form), workspaces kept apart, viewers reading only, CSRF on every action, and the live
stream behind the session cookie."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from shopkeeper import clock
from shopkeeper.db.session import Database
from shopkeeper.inbox import canned
from shopkeeper.inbox import hooks as _hooks  # noqa: F401 - inbound messages join conversations
from shopkeeper.inbox.models import Conversation, ConversationEvent, TriageTask
from shopkeeper.inbox.triage import InboxWorker
from shopkeeper.messaging.models import Send
from tests.conftest import LiveServer, WorkspaceKeys
from tests.consent.factories import set_policy
from tests.helpers import ingest, message
from tests.inbox.factories import make_team, sms_in
from tests.web.helpers import csrf_of, login, make_user

ANN = "+447911123501"
BOB = "+447911123502"
AGENT = "agent@example.com"


def triaged(db: Database, customer_id: str) -> str:
    """The customer's conversation once classified (by this drain or by the app's own worker)."""
    deadline = time.monotonic() + 30
    while True:
        InboxWorker(db).drain()
        with db.session() as s:
            pending = s.scalar(select(TriageTask.id).where(TriageTask.done_at.is_(None)).limit(1))
            found = s.scalar(select(Conversation.id).where(Conversation.customer_id == customer_id))
        if pending is None and found is not None:
            return found
        assert time.monotonic() < deadline, "the message was not triaged"
        time.sleep(0.05)


def htmx(client: httpx.Client) -> dict[str, str]:
    """What htmx sends with each request from a page: its flag and the session's CSRF token."""
    return {"HX-Request": "true", "X-CSRF-Token": csrf_of(client.get("/inbox").text)}


def listed(html: str) -> list[str]:
    return re.findall(r'data-conversation-id="([^"]+)"', html)


def sends(db: Database, conversation_id: str) -> int:
    with db.session() as s:
        return int(
            s.scalar(
                select(func.count()).select_from(Send).where(Send.source_ref == conversation_id, Send.source == "inbox")
            )
            or 0
        )


def conversation(db: Database, conversation_id: str) -> Conversation:
    with db.session() as s:
        row = s.get(Conversation, conversation_id)
        assert row is not None
        s.expunge(row)
        return row


@pytest.fixture
def agent(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> str:
    user_id = make_user(db, workspace.id, email=AGENT, role="agent")
    assert login(app_client, email=AGENT).status_code == 303
    return user_id


def test_the_list_shows_customer_last_words_channel_and_sla_and_filters_as_the_api_does(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, agent: str
) -> None:
    ingest(
        db,
        workspace.id,
        [message("identify", userId="u-ann", traits={"phone": ANN, "first_name": "Ann", "last_name": "Lee"})],
    )
    ann = triaged(db, sms_in(db, workspace.id, ANN, "Where is my order 5521? It has not arrived."))
    bob = triaged(db, sms_in(db, workspace.id, BOB, "I love the new oak table, thank you!"))
    make_team(db, workspace.id, "delivery", [agent])
    h = htmx(app_client)
    assert app_client.post(f"/inbox/{ann}/assign", headers=h, data={"me": "1"}).status_code == 200
    assert (
        app_client.post(f"/inbox/{ann}/assign", headers=h, data={"assignee_id": agent, "team": "delivery"}).status_code
        == 200
    )
    assert app_client.post(f"/inbox/{ann}/priority", headers=h, data={"priority": "urgent"}).status_code == 200
    assert app_client.post(f"/inbox/{ann}/tags", headers=h, data={"add": "Late, parcel"}).status_code == 200

    page = app_client.get("/inbox")
    assert page.status_code == 200 and "content-security-policy" in page.headers
    assert set(listed(page.text)) == {ann, bob}
    row = page.text[page.text.index(f'data-conversation-id="{ann}"') :].split("</li>")[0]
    assert "Ann Lee" in row and "Where is my order 5521?" in row
    assert ">sms<" in row and "SLA none" in row and "urgent" in row and "#late" in row

    def only(**params: str) -> list[str]:
        response = app_client.get("/inbox", params=params)
        assert response.status_code == 200, response.text
        return listed(response.text)

    assert only(assignee="mine") == [ann]
    assert only(assignee="none") == [bob]
    assert only(assignee=agent) == [ann]
    assert only(team="delivery") == [ann]
    assert only(priority="urgent") == [ann] and only(priority="low") == []
    assert only(tag="parcel") == [ann]
    assert only(channel="sms", status="") == [bob, ann] and only(channel="email") == []
    assert only(intent=conversation(db, bob).intent or "") == [bob]
    assert only(sentiment="positive") == [bob]
    assert only(sla_state="breached") == [] and set(only(sla_state="none")) == {ann, bob}
    assert only(status="resolved") == []
    # The fragment the live stream fetches again keeps the filters.
    assert listed(app_client.get("/inbox/list", params={"assignee": "mine"}).text) == [ann]
    assert app_client.get("/inbox", params={"sla_state": "late"}).status_code == 400


def test_an_agent_works_a_conversation_with_htmx_each_action_whole_or_refused_beside_its_form(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, agent: str
) -> None:
    set_policy(db, workspace.id, {"quiet_hours": None})
    ingest(db, workspace.id, [message("identify", userId="u-ann", traits={"phone": ANN, "first_name": "Ann"})])
    ingest(
        db,
        workspace.id,
        [
            message(
                "track",
                userId="u-ann",
                event="Order Completed",
                properties={"order_id": "5521", "total": 84.5, "currency": "EUR"},
            )
        ],
    )
    cid = triaged(db, sms_in(db, workspace.id, ANN, "Where is my order 5521?"))
    with db.session(write=True) as s:
        canned.create(
            s, workspace.id, "late", "Late parcel", "Sorry {{ customer.first_name }}, it ships today.", clock.now()
        )
    make_team(db, workspace.id, "delivery", [agent])

    thread = app_client.get(f"/inbox/{cid}")
    assert thread.status_code == 200
    text = thread.text
    assert "Where is my order 5521?" in text and 'id="reply-form"' in text
    assert "#5521" in text and "84.50 EUR" in text  # the profile beside it: a recent order
    assert "phone" in text and ANN in text and "Ann" in text
    assert 'hx-post="/inbox/' in text and 'data-inbox-stream="/inbox/stream"' in text
    h = htmx(app_client)

    inserted = app_client.get(f"/inbox/{cid}/canned", params={"canned": "late", "text": "Hello!"}, headers=h)
    assert inserted.status_code == 200 and "Hello!\n\nSorry Ann, it ships today." in inserted.text

    empty = app_client.post(f"/inbox/{cid}/reply", headers=h, data={"text": "   "})
    assert empty.status_code == 400 and empty.headers["HX-Retarget"] == "#reply-form-error"
    assert "empty reply" in empty.text and sends(db, cid) == 0
    elsewhere = app_client.post(f"/inbox/{cid}/reply", headers=h, data={"text": "Hi", "channel": "fax"})
    assert elsewhere.status_code == 400 and sends(db, cid) == 0

    sent = app_client.post(
        f"/inbox/{cid}/reply", headers=h, data={"text": "Sorry Ann, it ships today.", "channel": "", "key": "k1"}
    )
    assert sent.status_code == 200, sent.text
    assert 'id="thread-live"' in sent.text and 'hx-swap-oob="true"' in sent.text and "Reply queued on sms." in sent.text
    assert "Sorry Ann, it ships today." in sent.text  # in the thread at once
    # A double click (the same form again) sends once.
    assert (
        app_client.post(
            f"/inbox/{cid}/reply", headers=h, data={"text": "Sorry Ann, it ships today.", "key": "k1"}
        ).status_code
        == 200
    )
    assert sends(db, cid) == 1
    by_email = app_client.post(
        f"/inbox/{cid}/reply", headers=h, data={"text": "Details by email", "channel": "email", "key": "k2"}
    )
    assert by_email.status_code == 200 and "Reply queued on email." in by_email.text

    noted = app_client.post(f"/inbox/{cid}/note", headers=h, data={"text": "VIP, be quick"})
    assert noted.status_code == 200 and "Note by Agent" in noted.text and "VIP, be quick" in noted.text
    assert (
        app_client.post(f"/inbox/{cid}/note", headers=h, data={"text": ""}).headers["HX-Retarget"] == "#note-form-error"
    )

    assert app_client.post(f"/inbox/{cid}/tags", headers=h, data={"add": "Late, VIP"}).status_code == 200
    assert conversation(db, cid).tags == ["late", "vip"]
    assert app_client.post(f"/inbox/{cid}/tags", headers=h, data={"remove": "late"}).status_code == 200
    assert conversation(db, cid).tags == ["vip"]
    too_long = app_client.post(f"/inbox/{cid}/tags", headers=h, data={"add": "ok, " + "x" * 61})
    assert too_long.status_code == 400 and too_long.headers["HX-Retarget"] == "#tags-form-error"
    assert conversation(db, cid).tags == ["vip"]  # not even the good one: nothing half-written

    assert app_client.post(f"/inbox/{cid}/assign", headers=h, data={"me": "1"}).status_code == 200
    assert conversation(db, cid).assignee_id == agent
    to_team = app_client.post(f"/inbox/{cid}/assign", headers=h, data={"assignee_id": "none", "team": "delivery"})
    assert to_team.status_code == 200
    c = conversation(db, cid)
    assert c.assignee_id is None and c.team_id is not None
    ghost = app_client.post(f"/inbox/{cid}/assign", headers=h, data={"assignee_id": agent, "team": "nope"})
    assert ghost.status_code == 404 and ghost.headers["HX-Retarget"] == "#assign-form-error"
    assert conversation(db, cid).assignee_id is None  # the agent was not set without the team

    assert app_client.post(f"/inbox/{cid}/priority", headers=h, data={"priority": "high"}).status_code == 200
    assert conversation(db, cid).priority == "high"
    assert app_client.post(f"/inbox/{cid}/priority", headers=h, data={"priority": "meh"}).status_code == 400

    past = app_client.post(f"/inbox/{cid}/snooze", headers=h, data={"until": "2001-01-01T09:00"})
    assert past.status_code == 400 and "future" in past.text and past.headers["HX-Retarget"] == "#snooze-form-error"
    snoozed = app_client.post(f"/inbox/{cid}/snooze", headers=h, data={"preset": "tomorrow"})
    assert snoozed.status_code == 200 and "Snoozed until" in snoozed.text
    c = conversation(db, cid)
    assert c.status == "snoozed" and c.snoozed_until is not None and c.snoozed_until.hour == 9
    assert app_client.post(f"/inbox/{cid}/snooze", headers=h, data={"until": "2099-03-01T08:30"}).status_code == 200
    assert conversation(db, cid).snoozed_until.isoformat().startswith("2099-03-01T08:30")  # type: ignore[union-attr]

    resolved = app_client.post(f"/inbox/{cid}/status", headers=h, data={"to": "resolved"})
    assert resolved.status_code == 200 and ">Reopen<" in resolved.text
    assert conversation(db, cid).status == "resolved"
    still = app_client.post(f"/inbox/{cid}/snooze", headers=h, data={"preset": "1h"})
    assert still.status_code == 409 and "reopen it first" in still.text
    assert app_client.post(f"/inbox/{cid}/status", headers=h, data={"to": "open"}).status_code == 200
    assert conversation(db, cid).status == "open"
    assert app_client.post(f"/inbox/{cid}/status", headers=h, data={"to": "pending"}).status_code == 200
    assert conversation(db, cid).status == "pending"

    with db.session() as s:
        kinds = set(s.scalars(select(ConversationEvent.kind).where(ConversationEvent.conversation_id == cid)))
    assert {"reply", "note", "tagged", "assigned", "priority", "snoozed", "resolved", "status"} <= kinds
    again = app_client.get(f"/inbox/{cid}/live").text  # what the live stream fetches
    assert "Resolved by Agent" in again and "Priority set to high by Agent" in again and "VIP, be quick" in again


def test_without_javascript_the_forms_post_and_come_back_to_the_thread(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, agent: str
) -> None:
    cid = triaged(db, sms_in(db, workspace.id, ANN, "Hello?"))
    token = csrf_of(app_client.get(f"/inbox/{cid}").text)
    done = app_client.post(f"/inbox/{cid}/note", data={"csrf": token, "text": "Called her"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/inbox/{cid}"
    refused = app_client.post(f"/inbox/{cid}/note", data={"csrf": token, "text": ""})
    assert refused.status_code == 400 and "empty note" in refused.text and "<main" in refused.text


def test_another_workspaces_conversation_is_not_found_by_any_page_or_action(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, make_workspace: Any, agent: str
) -> None:
    other: WorkspaceKeys = make_workspace("Other")
    theirs = triaged(db, sms_in(db, other.id, BOB, "Private matter"))
    mine = triaged(db, sms_in(db, workspace.id, ANN, "Hello"))
    assert listed(app_client.get("/inbox", params={"status": ""}).text) == [mine]
    assert app_client.get(f"/inbox/{theirs}").status_code == 404
    assert app_client.get(f"/inbox/{theirs}/live").status_code == 404
    h = htmx(app_client)
    assert app_client.get(f"/inbox/{theirs}/canned", params={"canned": "x"}, headers=h).status_code == 404
    for action, data in (
        ("reply", {"text": "Hi"}),
        ("note", {"text": "Hi"}),
        ("tags", {"add": "x"}),
        ("assign", {"me": "1"}),
        ("priority", {"priority": "high"}),
        ("snooze", {"preset": "1h"}),
        ("status", {"to": "resolved"}),
    ):
        refused = app_client.post(f"/inbox/{theirs}/{action}", headers=h, data=data)
        assert refused.status_code == 404, (action, refused.text)
    c = conversation(db, theirs)
    assert c.status == "open" and c.tags == [] and c.assignee_id is None and sends(db, theirs) == 0


def test_a_viewer_reads_the_inbox_but_cannot_act(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id, email="viewer@example.com", role="viewer")
    login(app_client, email="viewer@example.com")
    cid = triaged(db, sms_in(db, workspace.id, ANN, "Hello"))
    assert listed(app_client.get("/inbox").text) == [cid]
    page = app_client.get(f"/inbox/{cid}").text
    assert "Hello" in page and 'id="reply-form"' not in page and "needs the agent role" in page
    h = htmx(app_client)
    refused = app_client.post(f"/inbox/{cid}/reply", headers=h, data={"text": "Hi"})
    assert refused.status_code == 403 and "agent role" in refused.text
    assert app_client.post(f"/inbox/{cid}/status", headers=h, data={"to": "resolved"}).status_code == 403
    assert sends(db, cid) == 0 and conversation(db, cid).status == "open"


def test_every_action_needs_the_sessions_csrf_token(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, agent: str
) -> None:
    cid = triaged(db, sms_in(db, workspace.id, ANN, "Hello"))
    for headers in ({"HX-Request": "true"}, {"HX-Request": "true", "X-CSRF-Token": "forged"}):
        assert app_client.post(f"/inbox/{cid}/reply", headers=headers, data={"text": "Hi"}).status_code == 403
        assert app_client.post(f"/inbox/{cid}/status", headers=headers, data={"to": "resolved"}).status_code == 403
    assert app_client.post(f"/inbox/{cid}/note", data={"text": "Hi", "csrf": "forged"}).status_code == 403
    assert sends(db, cid) == 0 and conversation(db, cid).status == "open"
    app_client.cookies.clear()
    assert app_client.get("/inbox", follow_redirects=False).headers["location"] == "/login?next=/inbox"


# -- the live stream, from a real server ----------------------------------------------------------
class Stream:
    """The page's EventSource, as a thread reading the session-authenticated stream."""

    def __init__(self, url: str, cookies: httpx.Cookies, **params: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self.ids: list[int] = []
        self.status = 0
        self._client = httpx.Client(base_url=url, cookies=cookies, timeout=httpx.Timeout(30, read=60))
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(params,), daemon=True)
        self._thread.start()
        assert self._ready.wait(15), "the stream did not open"

    def _run(self, params: dict[str, Any]) -> None:
        headers = params.pop("headers", {})
        try:
            with self._client.stream("GET", "/inbox/stream", params=params, headers=headers) as r:
                self._response = r
                self.status = r.status_code
                self.content_type = r.headers.get("content-type", "")
                self._ready.set()
                event: dict[str, str] = {}
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("id: "):
                        event["id"] = line[4:]
                    elif line.startswith("event: "):
                        event["event"] = line[7:]
                    elif line.startswith("data: "):
                        event["data"] = line[6:]
                    elif line == "" and "data" in event:
                        assert "event" not in event  # one handler (onmessage) takes them all
                        self.ids.append(int(event["id"]))
                        self.events.append(orjson.loads(event["data"]))
                        event = {}
        except httpx.HTTPError:
            self._ready.set()

    def wait_for(self, predicate: Any, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if predicate(event):
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no such event; got {[e['kind'] for e in self.events]}")

    def close(self) -> None:
        """Hang up for real (shutting the socket down wakes the reading thread), so that the
        server ends the stream."""
        self._stop.set()
        response = getattr(self, "_response", None)
        if response is not None:
            network = response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._client.close()


def _logged_in(url: str, email: str) -> httpx.Cookies:
    with httpx.Client(base_url=url) as client:
        assert login(client, email=email).status_code == 303
        return client.cookies


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    opened: list[Stream] = []
    try:
        yield opened
    finally:
        for stream in opened:
            stream.close()


def test_the_live_stream_follows_the_session_and_its_workspace_and_resumes_after_last_event_id(
    live_server: LiveServer, db: Database, make_workspace: Any, streams: list[Stream]
) -> None:
    shop: WorkspaceKeys = make_workspace("Shop")
    other: WorkspaceKeys = make_workspace("Other")
    make_user(db, shop.id, email=AGENT, role="agent")
    make_user(db, other.id, email="outsider@example.com", role="agent")
    with httpx.Client(base_url=live_server.url) as anonymous:
        refused = anonymous.get("/inbox/stream", follow_redirects=False)
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")

    cookies = _logged_in(live_server.url, AGENT)
    stream = Stream(live_server.url, cookies)
    outsider = Stream(live_server.url, _logged_in(live_server.url, "outsider@example.com"))
    streams += [stream, outsider]
    assert stream.status == 200 and stream.content_type.startswith("text/event-stream")

    ann = sms_in(db, shop.id, ANN, "Is the oak table in stock?")  # another process: found by the poll
    arrived = stream.wait_for(lambda e: e["kind"] == "message")
    assert arrived["customer_id"] == ann and arrived["data"]["text"] == "Is the oak table in stock?"

    first = stream.ids[0]
    resumed = Stream(live_server.url, cookies, headers={"Last-Event-ID": str(first)})
    streams.append(resumed)
    again = resumed.wait_for(lambda e: e["kind"] == "message")
    assert resumed.ids[0] > first and again["seq"] == stream.ids[stream.events.index(arrived)]
    after = Stream(live_server.url, cookies, after=str(first - 1))
    streams.append(after)
    assert after.wait_for(lambda e: e["seq"] == first)["seq"] == first
    assert outsider.events == []  # another workspace's agent saw none of it

    # Logged out: the stream no longer opens.
    with httpx.Client(base_url=live_server.url, cookies=cookies) as client:
        token = csrf_of(client.get("/inbox").text)
        client.post("/logout", data={"csrf": token})
        assert client.get("/inbox/stream", follow_redirects=False).status_code == 303
