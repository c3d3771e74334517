"""SPEC §5 messaging apps, Telegram-shaped: a customer writes to the bot (the webhook checked by
its secret token header), becomes a customer with their chat id, and gets a templated reply
through the Bot API."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from shopkeeper.messaging.inbound import InboundMessage
from shopkeeper.messaging.models import Interaction
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.social.fakes import FakeTelegram
from tests.conftest import WorkspaceKeys
from tests.messaging.factories import add_provider, load, make_template, plan

CHAT = 731_942_118


def bot(db: Database, workspace_id: str, api: FakeTelegram, **extra: object) -> str:
    return add_provider(
        db, workspace_id, channel="telegram", type="bot_api", name="bot", settings=api.settings(**extra)
    )


def tell(app: httpx.Client, provider_id: str, signed: tuple[bytes, dict[str, str]]) -> httpx.Response:
    body, headers = signed
    return app.post(f"/webhooks/telegram/{provider_id}", content=body, headers=headers)


def rows(db: Database, workspace_id: str) -> list[Interaction]:
    with db.session() as s:
        return list(
            s.scalars(
                select(Interaction)
                .where(Interaction.workspace_id == workspace_id)
                .order_by(Interaction.created_at, Interaction.id)
            )
        )


def test_a_customer_writes_to_the_bot_and_gets_a_templated_reply(
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    bot_api: FakeTelegram,
    app: httpx.Client,
    heard: list[InboundMessage],
) -> None:
    provider_id = bot(db, workspace.id, bot_api)
    answer = tell(app, provider_id, bot_api.update(CHAT, "/start", message_id=5, username="ada_l", last_name="L"))
    assert answer.status_code == 200 and answer.json()["messages"] == 1
    with db.session() as s:
        identity = s.scalars(select(Identity).where(Identity.workspace_id == workspace.id)).one()
        customer = s.get(Customer, identity.customer_id)
    assert (identity.kind, identity.value) == ("telegram_chat_id", str(CHAT))
    assert customer is not None
    assert customer.traits == {"first_name": "Ada", "last_name": "L", "telegram_username": "ada_l"}
    [received] = rows(db, workspace.id)
    assert (received.channel, received.text, received.provider_message_id) == ("telegram", "/start", f"{CHAT}:5")
    assert received.data["command"] == "start" and heard[0].customer_created

    make_template(db, workspace.id, "hello", content={"telegram": {"text": "Hi {{ customer.first_name }}!"}})
    send_id = plan(db, workspace.id, identity.customer_id, channel="telegram", template="hello")
    assert worker.drain().sent == 1, load(db, send_id)[0].reason
    [sent] = bot_api.sent
    assert (sent["chat_id"], sent["text"]) == (CHAT, "Hi Ada!")
    send, _ = load(db, send_id)
    assert (send.status, send.provider_message_id, send.to_address) == ("sent", f"{CHAT}:{sent['_id']}", str(CHAT))


def test_the_secret_token_is_required_and_checked(
    db: Database, workspace: WorkspaceKeys, bot_api: FakeTelegram, app: httpx.Client
) -> None:
    provider_id = bot(db, workspace.id, bot_api)
    body, headers = bot_api.update(CHAT, "hello")
    url = f"/webhooks/telegram/{provider_id}"
    assert (
        app.post(url, content=body, headers={**headers, "X-Telegram-Bot-Api-Secret-Token": "guess"}).status_code == 403
    )
    assert app.post(url, content=body, headers={"Content-Type": "application/json"}).status_code == 403
    unprotected = add_provider(
        db, workspace.id, channel="telegram", type="bot_api", name="open", settings=bot_api.settings(secret_token=None)
    )
    assert tell(app, unprotected, (body, headers)).status_code == 403  # no secret configured: nothing is trusted
    assert rows(db, workspace.id) == []
    assert app.post(url, content=b'{"update_id": 1, "message": {"chat": 5}}', headers=headers).status_code == 400
    assert app.post(url, content=b"{", headers=headers).status_code == 400


def test_groups_edits_and_repeats_store_nothing_new(
    db: Database, workspace: WorkspaceKeys, bot_api: FakeTelegram, app: httpx.Client, heard: list[InboundMessage]
) -> None:
    provider_id = bot(db, workspace.id, bot_api)
    assert tell(app, provider_id, bot_api.update(-100123, "hi all", chat_type="group")).json()["messages"] == 0
    assert tell(app, provider_id, bot_api.signed({"update_id": 9, "edited_message": {"text": "x"}})).status_code == 200
    first = bot_api.update(CHAT, "where is my parcel?", message_id=77)
    assert tell(app, provider_id, first).json()["messages"] == 1
    assert tell(app, provider_id, first).json()["repeats"] == 1
    assert len(rows(db, workspace.id)) == 1 and len(heard) == 1


@pytest.mark.parametrize(
    ("code", "description", "outcome"),
    [
        (403, "Forbidden: bot was blocked by the user", "failed"),
        (400, "Bad Request: chat not found", "failed"),
        (429, "Too Many Requests: retry after 3", "retried"),
        (502, "Bad Gateway", "retried"),
    ],
)
def test_bot_api_refusals_are_sorted_into_retries_and_failures(
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    bot_api: FakeTelegram,
    app: httpx.Client,
    code: int,
    description: str,
    outcome: str,
) -> None:
    provider_id = bot(db, workspace.id, bot_api)
    tell(app, provider_id, bot_api.update(CHAT, "hi"))
    with db.session() as s:
        customer_id = s.scalars(select(Identity.customer_id)).one()
    bot_api.refuse(code, description)
    send_id = plan(db, workspace.id, customer_id, channel="telegram", content={"telegram": {"text": "Hello"}})
    assert getattr(worker.drain(), outcome) == 1
    send, events = load(db, send_id)
    assert send.status == ("failed" if outcome == "failed" else "queued")
    assert description in (events[-1].reason or "")
