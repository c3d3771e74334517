"""The agent API over HTTP: list and filter, read a thread with the 360° view, reply, note, tag,
assign, snooze, resolve and reopen; teams, rules, SLA policies, canned replies, settings; reviews
in; the CSAT survey answered on its public page. Bad input is a 4xx naming the field."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shopkeeper.db.session import Database
from shopkeeper.inbox.models import Conversation, TriageTask
from shopkeeper.inbox.triage import InboxWorker
from shopkeeper.messaging.models import Send
from tests.conftest import WorkspaceKeys
from tests.consent.factories import set_policy
from tests.inbox.factories import make_agent, sms_in

ANN = "+447911123501"


def auth(workspace: WorkspaceKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {workspace.secret_key}"}


def _conversation(db: Database, workspace: WorkspaceKeys, customer_id: str) -> str:
    """The customer's conversation once triaged: by this drain or by the app's own inbox worker,
    which may hold the task's lease at this moment."""
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


def test_an_agent_works_a_conversation_through_the_api(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    h = auth(workspace)
    set_policy(db, workspace.id, {"quiet_hours": None})
    agent = make_agent(db, workspace.id, "agent@example.com")
    assert (
        app_client.post(
            "/api/v1/teams", headers=h, json={"key": "support", "name": "Support", "members": [agent]}
        ).status_code
        == 201
    )
    ann = sms_in(db, workspace.id, ANN, "Hello, my order 5521 has not arrived yet, where is it?")
    cid = _conversation(db, workspace, ann)

    listed = app_client.get(
        "/api/v1/conversations", headers=h, params={"status": "open", "intent": "order_status"}
    ).json()
    assert [c["id"] for c in listed["data"]] == [cid]
    assert app_client.get("/api/v1/conversations", headers=h, params={"intent": "billing"}).json()["data"] == []

    thread = app_client.get(f"/api/v1/conversations/{cid}", headers=h).json()
    assert thread["customer"]["id"] == ann and thread["messages"][0]["direction"] == "in"
    assert thread["customer"]["sections"]["conversations"]["open"] == 1
    assert {"created", "message", "classified", "routed"} <= {e["kind"] for e in thread["events"]}

    r = app_client.post(
        f"/api/v1/conversations/{cid}/assign", headers=h, json={"team": "support", "assignee_id": agent}
    )
    assert r.status_code == 200 and r.json()["assignee_id"] == agent
    assert (
        app_client.post(f"/api/v1/conversations/{cid}/notes", headers=h, json={"text": "VIP, be quick"}).status_code
        == 201
    )
    tagged = app_client.post(f"/api/v1/conversations/{cid}/tags", headers=h, json={"add": ["Delivery"]}).json()
    assert tagged["tags"] == ["delivery"]
    assert app_client.get("/api/v1/conversations", headers=h, params={"tag": "delivery"}).json()["data"][0]["id"] == cid

    assert (
        app_client.post(
            "/api/v1/canned-replies",
            headers=h,
            json={"key": "late", "name": "Late", "body": "Sorry {{ customer.phone }}!"},
        ).status_code
        == 201
    )
    rendered = app_client.get(f"/api/v1/conversations/{cid}/canned/late", headers=h).json()
    assert rendered["text"] == f"Sorry {ANN}!"
    reply = app_client.post(
        f"/api/v1/conversations/{cid}/reply", headers=h, json={"canned": "late", "idempotency_key": "r-1"}
    )
    assert reply.status_code == 201 and reply.json()["channel"] == "sms", reply.text
    again = app_client.post(
        f"/api/v1/conversations/{cid}/reply", headers=h, json={"canned": "late", "idempotency_key": "r-1"}
    )
    assert again.json()["send_id"] == reply.json()["send_id"]  # a retried POST sends nothing twice
    with db.session() as s:
        send = s.get(Send, reply.json()["send_id"])
        assert send is not None and send.source == "inbox" and send.data["conversation_id"] == cid

    snoozed = app_client.post(f"/api/v1/conversations/{cid}/snooze", headers=h, json={"until": "2099-01-01T00:00:00Z"})
    assert snoozed.json()["status"] == "snoozed"
    resolved = app_client.post(f"/api/v1/conversations/{cid}/resolve", headers=h).json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"]
    assert app_client.post(f"/api/v1/conversations/{cid}/reopen", headers=h).json()["status"] == "open"
    assert (
        app_client.patch(f"/api/v1/conversations/{cid}", headers=h, json={"priority": "urgent"}).json()["priority"]
        == "urgent"
    )
    urgent = app_client.get("/api/v1/conversations", headers=h, params={"priority": "urgent"}).json()["data"]
    assert [c["id"] for c in urgent] == [cid]
    assert app_client.get("/api/v1/conversations", headers=h, params={"priority": "meh"}).status_code == 400
    agents = app_client.get("/api/v1/agents", headers=h).json()
    assert [(a["id"], a["open_conversations"]) for a in agents] == [(agent, 1)]


def test_a_poor_review_becomes_a_triaged_conversation_and_is_stored_once(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    h = auth(workspace)
    review = {
        "source": "Trustpilot",
        "external_id": "tp-991",
        "rating": 1,
        "title": "Never again",
        "text": "Awful experience. The parcel came damaged and nobody answered my emails.",
        "author": {"name": "Dan", "email": "dan@example.com"},
    }
    first = app_client.post("/api/v1/reviews", headers=h, json=review)
    assert first.status_code == 201, first.text
    assert first.json()["tags"] == ["review"] and first.json()["channel"] == "email"
    assert app_client.post("/api/v1/reviews", headers=h, json=review).status_code == 200
    _conversation(db, workspace, first.json()["customer_id"])
    body = app_client.get(f"/api/v1/conversations/{first.json()['id']}", headers=h).json()
    assert body["conversation"]["sentiment"] == "negative"
    assert body["conversation"]["data"]["rating"] == 1
    assert {e["kind"] for e in body["events"]} >= {"classified", "marketing_paused"}
    assert any(i["kind"] == "conversation" for i in body["customer"]["timeline"]["data"])


def test_the_csat_survey_is_sent_on_resolution_and_answered_on_its_page(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    h = auth(workspace)
    set_policy(db, workspace.id, {"quiet_hours": None})
    settings = app_client.put("/api/v1/inbox/settings", headers=h, json={"csat": {"enabled": True}})
    assert settings.status_code == 200, settings.text
    ann = sms_in(db, workspace.id, ANN, "Can I change the size of my order?")
    cid = _conversation(db, workspace, ann)
    app_client.post(f"/api/v1/conversations/{cid}/resolve", headers=h)
    with db.session() as s:
        survey = s.scalar(select(Send).where(Send.source == "system", Send.idempotency_key.like("inbox-csat:%")))
        assert survey is not None and survey.channel == "sms"
        text = survey.content["sms"]["text"] if survey.content else ""
    link = re.search(r"http\S+/c/csat/(\S+)", text)
    assert link, text
    token = link[1]
    page = app_client.get(f"/c/csat/{token}")
    assert page.status_code == 200 and "How did we do?" in page.text
    assert app_client.get(f"/c/csat/{token[:-3]}xyz").status_code == 404
    bad = app_client.post(f"/c/csat/{token}", data={"score": "9"})
    assert bad.status_code == 400 and "1 to 5" in bad.text
    done = app_client.post(f"/c/csat/{token}", data={"score": "2", "comment": "slow"})
    assert done.status_code == 200 and "Thank you" in done.text
    conversation = app_client.get(f"/api/v1/conversations/{cid}", headers=h).json()["conversation"]
    # A poor answer reopens the conversation for a follow-up.
    assert conversation["csat_score"] == 2 and conversation["status"] == "open" and "poor-csat" in conversation["tags"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "PUT",
            "/api/v1/routing-rules",
            [{"name": "x", "conditions": {"intent": ["gossip"]}, "actions": {}}],
            "rules[0].conditions.intent",
        ),
        ("PUT", "/api/v1/routing-rules", [{"name": "x", "actions": {"team": "nope"}}], "rules[0].actions.team"),
        ("PUT", "/api/v1/routing-rules", [{"name": "x", "actions": {"priority": "asap"}}], "rules[0].actions.priority"),
        ("PUT", "/api/v1/inbox/settings", {"auto_ack": {"channels": ["pigeon"]}}, "auto_ack.channels"),
        (
            "PUT",
            "/api/v1/inbox/settings",
            {"business_hours": {"days": {"mon": [["18:00", "09:00"]]}}},
            "business_hours",
        ),
        ("POST", "/api/v1/sla-policies", {"key": "x", "name": "x"}, "first_response_minutes"),
        ("POST", "/api/v1/canned-replies", {"key": "bad", "name": "x", "body": "Hi {{ name "}, "body"),
        ("POST", "/api/v1/reviews", {"source": "s", "external_id": "1", "rating": 7, "text": "x"}, "rating"),
        (
            "POST",
            "/api/v1/reviews",
            {"source": "s", "external_id": "1", "rating": 3, "author": {"email": "not-mail"}},
            "author.email",
        ),
        ("POST", "/api/v1/teams", {"key": "t", "name": "T", "members": ["usr_missing"]}, "members[0]"),
    ],
)
def test_bad_inbox_input_is_refused_naming_the_field(
    app_client: httpx.Client, workspace: WorkspaceKeys, method: str, path: str, body: Any, field: str
) -> None:
    r = app_client.request(method, path, headers=auth(workspace), json=body)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["field"] == field, r.json()


def test_bad_actions_on_a_conversation_are_refused_and_change_nothing(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    h = auth(workspace)
    cid = _conversation(db, workspace, sms_in(db, workspace.id, ANN, "Hi there"))
    before = app_client.get(f"/api/v1/conversations/{cid}", headers=h).json()["conversation"]
    cases = [
        ("reply", {"text": "a", "canned": "b"}, "text"),
        ("reply", {"text": "  "}, "text"),
        ("reply", {"text": "hello", "channel": "fax"}, "channel"),
        ("assign", {"assignee_id": "usr_nobody"}, "assignee_id"),
        ("assign", {"team": "ghosts"}, "team"),
        ("snooze", {"until": "2001-01-01T00:00:00Z"}, "until"),
        ("notes", {"text": ""}, "text"),
        ("tags", {"add": [""]}, "tags[0]"),
    ]
    for action, body, field in cases:
        r = app_client.post(f"/api/v1/conversations/{cid}/{action}", headers=h, json=body)
        assert 400 <= r.status_code < 500 and r.json()["error"]["field"] == field, (action, r.text)
    assert app_client.get("/api/v1/conversations/cnv_nope", headers=h).status_code == 404
    assert app_client.get("/api/v1/conversations", headers=h, params={"status": "lost"}).status_code == 400
    after = app_client.get(f"/api/v1/conversations/{cid}", headers=h).json()["conversation"]
    assert after == before
