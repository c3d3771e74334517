"""Chat as data: inbound messages announced to the inbox's listeners in their transaction, history
that hides failed sends, receipts that only touch the visitor's own messages, identity tokens a
site computes with nothing but HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.channels.chat import service
from shopkeeper.channels.chat.tokens import identity_secret
from shopkeeper.channels.chat.visitors import Claims, identify, resolve
from shopkeeper.db.session import Database
from shopkeeper.errors import Forbidden, Invalid, Unauthorized
from shopkeeper.messaging import inbound
from shopkeeper.messaging.models import Interaction
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.conftest import WorkspaceKeys


def visitor_message(db: Database, workspace_id: str, anonymous_id: str, text: str, client_id: str) -> Interaction:
    with db.session(write=True) as session:
        visitor = identify(session, workspace_id, Claims(anonymous_id=anonymous_id))
        customer_id = resolve(session, visitor, clock.now(), create=True, trigger="test")
        assert customer_id is not None
        row, _ = service.store_inbound(session, visitor, customer_id, text, clock.now(), client_id=client_id)
        return row


def test_a_site_computes_the_user_token_with_plain_hmac_sha256(db: Database, workspace: WorkspaceKeys) -> None:
    with db.session() as session:
        ws = session.get(Workspace, workspace.id)
        assert ws is not None
        secret = identity_secret(ws)
        # What the shop's server does (docs/web-chat.md), in any language: hex HMAC-SHA256(secret, user id).
        token = hmac.new(secret.encode(), b"user-1", hashlib.sha256).hexdigest()
        assert identify(session, workspace.id, Claims(user_id="user-1", user_token=token.upper())).verified
        with pytest.raises(Unauthorized):
            identify(session, workspace.id, Claims(user_id="user-2", user_token=token))
        with pytest.raises(Invalid):
            identify(session, workspace.id, Claims())
        with pytest.raises(Invalid):
            identify(session, workspace.id, Claims(anonymous_id="x" * 201))


def test_inbound_chat_messages_reach_the_inbox_listeners_inside_the_transaction(
    db: Database, workspace: WorkspaceKeys
) -> None:
    seen: list[tuple[str, str, str | None]] = []

    def listener(session: Session, message: inbound.InboundMessage) -> None:
        stored = session.get(Interaction, message.interaction_id)  # visible: the same transaction
        assert stored is not None
        seen.append((message.channel, message.address, message.text))

    remove = inbound.on_inbound(listener)
    try:
        visitor_message(db, workspace.id, "anon-1", "Hello", "c-1")
        visitor_message(db, workspace.id, "anon-1", "Hello", "c-1")  # a retried frame: not announced again
    finally:
        remove()
    assert seen == [("chat", "anon-1", "Hello")]

    def refuse(session: Session, message: inbound.InboundMessage) -> None:
        raise RuntimeError("the inbox is down")

    remove = inbound.on_inbound(refuse)
    try:
        with pytest.raises(RuntimeError):
            visitor_message(db, workspace.id, "anon-1", "Lost?", "c-2")
    finally:
        remove()
    with db.session() as session:
        texts = list(session.scalars(select(Interaction.text).where(Interaction.workspace_id == workspace.id)))
    assert texts == ["Hello"]  # the refused message was not half-stored


def test_a_client_id_of_another_visitor_is_not_theirs_to_read(db: Database, workspace: WorkspaceKeys) -> None:
    visitor_message(db, workspace.id, "anon-a", "Private", "c-shared")
    with pytest.raises(Invalid) as caught:
        visitor_message(db, workspace.id, "anon-b", "Mine", "c-shared")
    assert caught.value.field == "client_id"


def test_history_shows_sent_replies_but_not_failed_ones_and_receipts_only_touch_own_messages(
    db: Database, workspace: WorkspaceKeys
) -> None:
    first = visitor_message(db, workspace.id, "anon-h", "Question", "c-1")
    other = visitor_message(db, workspace.id, "anon-other", "Other", "c-1b")
    now = clock.now()
    with db.session(write=True) as session:
        ok = service.send_chat(session, workspace.id, first.customer_id, "Answer", now)
        theirs = service.send_chat(session, workspace.id, other.customer_id, "Not yours", now)
    worker = DeliveryWorker(db)
    try:
        assert worker.drain().sent == 2
    finally:
        worker.pool.close()
    with db.session(write=True) as session:
        failed = service.send_chat(session, workspace.id, first.customer_id, "Never went out", now)
        session.flush()
        session.add(
            Interaction(
                id="int_failed",
                workspace_id=workspace.id,
                customer_id=first.customer_id,
                channel="chat",
                direction="out",
                send_id=failed.id,
                status="failed",
                text="Never went out",
                data={},
                created_at=now,
            )
        )
    with db.session(write=True) as session:
        shown = [(i.direction, i.text) for i in service.history(session, workspace.id, first.customer_id)]
        assert shown == [("in", "Question"), ("out", "Answer")]
        ok_row = session.get(type(ok), ok.id)
        theirs_row = session.get(type(theirs), theirs.id)
        assert ok_row is not None and theirs_row is not None
        ids = [ok_row.interaction_id, theirs_row.interaction_id]
        moved = service.receipt(session, workspace.id, first.customer_id, ids, "opened", clock.now())
        assert moved == 1
        assert (ok_row.status, theirs_row.status) == ("opened", "sent")
        with pytest.raises(Invalid):
            service.receipt(session, workspace.id, first.customer_id, ids, "clicked", clock.now())


def test_an_anonymous_id_of_a_signed_in_customer_is_refused(db: Database, workspace: WorkspaceKeys) -> None:
    from tests.helpers import ingest, message

    ingest(db, workspace.id, [message("identify", userId="u-1", anonymousId="anon-known")])
    with db.session(write=True) as session:
        visitor = identify(session, workspace.id, Claims(anonymous_id="anon-known"))
        with pytest.raises(Forbidden):
            resolve(session, visitor, clock.now(), create=False, trigger="test")
        unknown = identify(session, workspace.id, Claims(anonymous_id="anon-new"))
        assert resolve(session, unknown, clock.now(), create=False, trigger="test") is None
