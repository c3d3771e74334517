"""SPEC §6 in the service: inbound messages become conversations that are classified (by the real
model), routed by ordered rules to teams and agents, acknowledged automatically, timed by SLA
clocks in simulated time, and that pause marketing while a complaint is open."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.consent.policy import can_contact
from shopkeeper.db.session import Database
from shopkeeper.inbox import conversations
from shopkeeper.inbox.models import Conversation, ConversationEvent
from shopkeeper.inbox.triage import InboxWorker
from shopkeeper.messaging.models import Interaction, Send
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic, set_policy, set_status
from tests.inbox.factories import (
    conversation_of,
    kinds,
    make_agent,
    make_policy,
    make_team,
    set_inbox,
    set_rules,
    sms_in,
)

ANN = "+447911123401"
BOB = "+447911123402"


def test_a_message_is_classified_routed_round_robin_and_acknowledged_on_its_channel(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys
) -> None:
    set_policy(db, workspace.id, {"quiet_hours": None})
    first = make_agent(db, workspace.id, "a1@example.com")
    second = make_agent(db, workspace.id, "a2@example.com")
    away = make_agent(db, workspace.id, "a3@example.com", available=False)
    make_team(db, workspace.id, "orders", [first, second, away])
    make_team(db, workspace.id, "billing", [second])
    set_rules(
        db,
        workspace.id,
        [
            {
                "name": "money",
                "conditions": {"intent": ["billing"]},
                "actions": {"team": "billing", "priority": "high"},
            },
            {
                "name": "where is it",
                "conditions": {"intent": ["order_status"]},
                "actions": {"team": "orders", "tags": ["wismo"]},
            },
        ],
    )
    set_inbox(db, workspace.id, {"auto_ack": {"enabled": True, "text": "Got it, we will be back soon."}})

    ann = sms_in(db, workspace.id, ANN, "Hi, where is my order #4417? It was supposed to arrive yesterday")
    bob = sms_in(db, workspace.id, BOB, "Where's my parcel? Tracking hasn't updated since Monday")
    carol = sms_in(db, workspace.id, "+447911123403", "You charged my card twice for the same order, please refund one")
    inbox = InboxWorker(db)
    report = inbox.drain()
    assert report.classified == 3 and report.routed == 3 and report.acknowledged == 3

    a, b, c = (conversation_of(db, workspace.id, who) for who in (ann, bob, carol))
    assert (a.intent, b.intent, c.intent) == ("order_status", "order_status", "billing")
    # Round robin over the available members only, in id order: the away agent gets nothing.
    assert sorted([a.assignee_id, b.assignee_id]) == sorted([first, second])
    assert "wismo" in a.tags and c.priority == "high" and c.assignee_id == second
    with db.session() as s:
        acks = list(s.scalars(select(Send).where(Send.source == "system").order_by(Send.created_at)))
        assert {x.channel for x in acks} == {"sms"} and len(acks) == 3
        assert acks[0].data["conversation_id"] in {a.id, b.id, c.id}
        classified = s.get(Interaction, s.scalar(select(Interaction.id).where(Interaction.customer_id == ann)))
        assert classified is not None and classified.data["classification"]["intent"] == "order_status"
    # Running the worker again does nothing more: the tasks are done, the acks keyed.
    assert inbox.drain().classified == 0


def test_follow_ups_thread_across_channels_and_a_resolved_conversation_reopens(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys
) -> None:
    ann = sms_in(db, workspace.id, ANN, "Do you ship to Norway?")
    InboxWorker(db).drain()
    first = conversation_of(db, workspace.id, ann)
    # The same customer writes on chat: the open conversation gathers it.
    from shopkeeper.messaging import inbound

    with db.session(write=True) as s:
        inbound.receive(
            s,
            workspace.id,
            channel="chat",
            kind="phone",
            address=ANN,
            text="Also, can I pay by invoice?",
            now=clock.now(),
            provider="websocket",
            provider_message_id="chat-1",
            customer_id=ann,
        )
    again = conversation_of(db, workspace.id, ann)
    assert again.id == first.id and again.channel == "chat"  # a reply now goes out on chat

    with db.session(write=True) as s:
        conversations.resolve(s, conversations.get(s, workspace.id, first.id), "key:test", clock.now())
    frozen_clock.advance(timedelta(days=2))
    sms_in(db, workspace.id, ANN, "Thanks, one more question about sizes")
    reopened = conversation_of(db, workspace.id, ann)
    assert reopened.id == first.id and reopened.status == "open" and reopened.resolved_at is None
    assert kinds(db, first.id).count("reopened") == 1

    with db.session(write=True) as s:
        conversations.resolve(s, conversations.get(s, workspace.id, first.id), "key:test", clock.now())
    frozen_clock.advance(timedelta(days=30))
    sms_in(db, workspace.id, ANN, "Hello again, a new order question")
    with db.session() as s:
        assert s.scalar(select(Conversation.id).where(Conversation.status == "open")) != first.id


def test_sla_clocks_breach_in_simulated_business_time_and_raise_one_alert_each(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys
) -> None:
    hours = {"timezone": "UTC", "days": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
    make_policy(
        db,
        workspace.id,
        first_response_minutes=60,
        next_response_minutes=30,
        resolution_minutes=480,
        business_hours=hours,
    )
    frozen_clock.set(clock.now().replace(year=2026, month=11, day=27, hour=16, minute=30))  # Friday 16:30
    ann = sms_in(db, workspace.id, ANN, "My order arrived broken, this is unacceptable")
    inbox = InboxWorker(db)
    inbox.drain()
    c = conversation_of(db, workspace.id, ann)
    assert c.first_response_due_at is not None
    assert (c.first_response_due_at.weekday(), c.first_response_due_at.hour, c.first_response_due_at.minute) == (
        0,
        9,
        30,
    )

    frozen_clock.set(c.first_response_due_at - timedelta(minutes=1))
    assert inbox.run_once().breached == 0
    frozen_clock.set(c.first_response_due_at + timedelta(minutes=1))
    assert inbox.run_once().breached == 1
    assert inbox.run_once().breached == 0  # one alert per clock
    with db.session() as s:
        (alert,) = s.scalars(select(ConversationEvent).where(ConversationEvent.kind == "sla_breached"))
        assert alert.data["clock"] == "first_response"

    # The agent answers; the customer writes again: the next-response clock starts and breaches.
    with db.session(write=True) as s:
        conversations.reply(
            s,
            conversations.get(s, workspace.id, c.id),
            text="Sorry! Sending a new one.",
            actor="key:t",
            now=clock.now(),
        )
    sms_in(db, workspace.id, ANN, "When will it ship?")
    c = conversation_of(db, workspace.id, ann)
    assert c.next_response_due_at == clock.now() + timedelta(minutes=30)
    frozen_clock.advance(timedelta(minutes=31))
    inbox.run_once()
    with db.session() as s:
        clocks = sorted(
            e.data["clock"]
            for e in s.scalars(select(ConversationEvent).where(ConversationEvent.kind == "sla_breached"))
        )
    assert clocks == ["first_response", "next_response"]


def test_an_open_complaint_pauses_marketing_until_it_is_resolved(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    make_topic(db, workspace.id, "offers")
    set_status(db, workspace.id, ann, "sms", "offers", "opted_in")
    set_policy(db, workspace.id, {"quiet_hours": None})
    sms_in(db, workspace.id, ANN, "This is the third time my delivery is late. Terrible service, I am very unhappy.")
    InboxWorker(db).drain()
    c = conversation_of(db, workspace.id, ann)
    assert c.intent == "complaint" and c.sentiment == "negative"
    with db.session() as s:
        decision = can_contact(s, workspace.id, ann, "sms", "offers", "marketing", clock.now())
        assert decision.outcome == "deny" and decision.reason == "service_hold"
        assert can_contact(s, workspace.id, ann, "sms", None, "transactional", clock.now()).allowed
    with db.session(write=True) as s:
        conversations.resolve(s, conversations.get(s, workspace.id, c.id), "key:test", clock.now())
    with db.session() as s:
        assert can_contact(s, workspace.id, ann, "sms", "offers", "marketing", clock.now()).allowed


def test_snoozed_conversations_wake_at_their_time_or_on_a_new_message(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys
) -> None:
    ann = sms_in(db, workspace.id, ANN, "Can you call me back next week?")
    bob = sms_in(db, workspace.id, BOB, "I will send the photos tomorrow")
    inbox = InboxWorker(db)
    inbox.drain()
    for who in (ann, bob):
        c = conversation_of(db, workspace.id, who)
        with db.session(write=True) as s:
            conversations.snooze(
                s, conversations.get(s, workspace.id, c.id), clock.now() + timedelta(days=3), "key:t", clock.now()
            )
    sms_in(db, workspace.id, BOB, "Here are the photos")
    assert conversation_of(db, workspace.id, bob).status == "open"
    frozen_clock.advance(timedelta(days=3, minutes=1))
    assert inbox.run_once().woken == 1
    assert conversation_of(db, workspace.id, ann).status == "open"


def test_an_agent_reply_goes_out_through_the_pipeline_on_the_customer_channel(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker
) -> None:
    ann = sms_in(db, workspace.id, ANN, "Is the blue lamp back in stock?")
    InboxWorker(db).drain()
    c = conversation_of(db, workspace.id, ann)
    with db.session(write=True) as s:
        send = conversations.reply(
            s, conversations.get(s, workspace.id, c.id), text="Yes, since today!", actor="key:t", now=clock.now()
        )
        send_id = send.id
    assert worker.drain().sent == 1
    with db.session() as s:
        sent = s.get(Send, send_id)
        assert sent is not None and sent.status in ("sent", "delivered")
        assert sent.channel == "sms" and sent.to_address == ANN
        out = s.get(Interaction, sent.interaction_id)
        assert out is not None and out.conversation_id == c.id and out.text == "Yes, since today!"
    after = conversation_of(db, workspace.id, ann)
    assert after.first_response_at is not None and after.waiting_since is None
