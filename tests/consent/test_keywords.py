"""SPEC §4: SMS `STOP`/`START`/`HELP` keywords on inbound SMS."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from shopkeeper import clock
from shopkeeper.consent.keywords import KeywordResult, handle_sms_keyword
from shopkeeper.consent.policy import can_contact
from shopkeeper.consent.service import suppressions_for
from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid
from tests.conftest import WorkspaceKeys
from tests.consent.factories import (
    consent_log,
    make_customer,
    make_topic,
    set_settings,
    set_status,
    status_of,
    workspace_row,
)

NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
PHONE = "+14155550100"


@pytest.fixture
def alice(db: Database, workspace: WorkspaceKeys) -> str:
    set_settings(db, workspace.id, default_phone_region="US")
    make_topic(db, workspace.id, "offers", channels=("email", "sms"))
    customer = make_customer(db, workspace.id, "alice", email="alice@example.com", phone=PHONE)
    set_status(db, workspace.id, customer, "sms", "offers", "opted_in")
    return customer


def text(db: Database, ws_id: str, body: str, phone: str = PHONE) -> KeywordResult:
    ws = workspace_row(db, ws_id)
    with db.session(write=True) as s:
        return handle_sms_keyword(s, ws, phone, body, clock.now(), ip="198.51.100.7")


def sms_decision(db: Database, ws: str, customer: str, kind: str = "marketing") -> str:
    with db.session() as s:
        return can_contact(s, ws, customer, "sms", "offers" if kind == "marketing" else None, kind, NOON).reason


def suppressed(db: Database, ws: str, phone: str = PHONE) -> list[str]:
    with db.session() as s:
        return [row.reason for row in suppressions_for(s, ws, "sms", [phone])]


@pytest.mark.parametrize("body", ["STOP", "stop", "  Stop.  ", "STOPALL", "unsubscribe!", "Cancel", "end", "QUIT"])
def test_stop_words_silence_the_number(db: Database, workspace: WorkspaceKeys, alice: str, body: str) -> None:
    assert sms_decision(db, workspace.id, alice) == "ok"
    result = text(db, workspace.id, body)
    assert (result.action, result.customer_ids, result.phone) == ("stop", [alice], PHONE)
    assert status_of(db, workspace.id, alice, "sms", "*") == "opted_out"
    assert suppressed(db, workspace.id) == ["stop"]
    assert sms_decision(db, workspace.id, alice) in ("suppressed", "channel_opted_out")
    assert sms_decision(db, workspace.id, alice, kind="transactional") in ("suppressed", "channel_opted_out")
    (event,) = [e for e in consent_log(db, workspace.id, alice) if e.source == "inbound-keyword"]
    assert (event.channel, event.topic, event.wording, event.ip) == ("sms", "*", body.strip(), "198.51.100.7")
    assert result.reply is not None and workspace_row(db, workspace.id).name in result.reply
    # Email is another channel: untouched.
    assert status_of(db, workspace.id, alice, "email", "*") == "unknown"


def test_a_number_in_national_format_is_the_same_number(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    result = text(db, workspace.id, "STOP", phone="(415) 555-0100")
    assert (result.phone, result.customer_ids) == (PHONE, [alice])
    assert status_of(db, workspace.id, alice, "sms", "*") == "opted_out"


def test_start_lifts_stop_and_earlier_topic_opt_ins_apply_again(
    db: Database, workspace: WorkspaceKeys, alice: str
) -> None:
    text(db, workspace.id, "STOP")
    result = text(db, workspace.id, "start")
    assert result.action == "start" and result.reply and "subscribed" in result.reply
    assert suppressed(db, workspace.id) == []
    assert status_of(db, workspace.id, alice, "sms", "*") == "unknown"
    assert status_of(db, workspace.id, alice, "sms", "offers") == "opted_in"
    assert sms_decision(db, workspace.id, alice) == "ok"
    sources = [(e.topic, e.status) for e in consent_log(db, workspace.id, alice) if e.source == "inbound-keyword"]
    assert sources == [("*", "opted_out"), ("*", "unknown")]


def test_start_does_not_lift_other_suppressions(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    from shopkeeper.consent.service import suppress

    with db.session(write=True) as s:
        suppress(s, workspace.id, "sms", PHONE, "complaint", NOON)
    text(db, workspace.id, "YES")
    assert suppressed(db, workspace.id) == ["complaint"]


@pytest.mark.parametrize("body", ["HELP", "info?"])
def test_help_changes_nothing_and_says_how_to_stop(
    db: Database, workspace: WorkspaceKeys, alice: str, body: str
) -> None:
    before = [e.id for e in consent_log(db, workspace.id)]
    result = text(db, workspace.id, body)
    assert result.action == "help" and result.reply and "STOP" in result.reply
    assert [e.id for e in consent_log(db, workspace.id)] == before and suppressed(db, workspace.id) == []


@pytest.mark.parametrize("body", ["please stop texting me", "STOP ALL", "Yes please, 2 tickets", "", "🙂"])
def test_only_a_whole_message_is_a_keyword(db: Database, workspace: WorkspaceKeys, alice: str, body: str) -> None:
    result = text(db, workspace.id, body)
    assert (result.action, result.reply) == (None, None)
    assert status_of(db, workspace.id, alice, "sms", "*") == "unknown" and suppressed(db, workspace.id) == []


def test_a_number_nobody_holds_is_still_suppressed(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    stranger = "+14155550199"
    result = text(db, workspace.id, "STOP", phone=stranger)
    assert result.customer_ids == [] and result.reply
    assert suppressed(db, workspace.id, stranger) == ["stop"]
    assert suppressed(db, workspace.id) == []  # alice's number is another address
    # Whoever is given that number later is not texted.
    bob = make_customer(db, workspace.id, "bob", phone=stranger)
    assert sms_decision(db, workspace.id, bob, kind="transactional") == "suppressed"


def test_a_stop_in_one_workspace_leaves_another_workspace_alone(
    db: Database,
    workspace: WorkspaceKeys,
    make_workspace: Callable[[str], WorkspaceKeys],
    alice: str,
) -> None:
    other = make_workspace("Other").id
    bob = make_customer(db, other, "bob", phone=PHONE)
    text(db, workspace.id, "STOP")
    assert status_of(db, other, bob, "sms", "*") == "unknown"
    assert suppressed(db, other) == []


def test_replies_are_configurable_per_workspace(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    set_settings(db, workspace.id, sms_keywords={"stop": "{workspace}: bye. Text START to return.", "help": 5})
    name = workspace_row(db, workspace.id).name
    assert text(db, workspace.id, "STOP").reply == f"{name}: bye. Text START to return."
    help_reply = text(db, workspace.id, "HELP").reply  # an invalid setting falls back to the default
    assert help_reply and help_reply.startswith(f"{name}:") and "STOP" in help_reply


def test_a_sender_that_is_no_phone_number_is_refused(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    with pytest.raises(Invalid):
        text(db, workspace.id, "STOP", phone="not a number")
