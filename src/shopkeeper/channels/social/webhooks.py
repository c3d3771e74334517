"""The messaging apps' webhooks: public routes, each authenticated the way its app signs.

- WhatsApp and Messenger (`/webhooks/whatsapp/{provider_id}`, `/webhooks/messenger/{provider_id}`):
  GET is Meta's subscription handshake (hub.mode=subscribe, hub.verify_token equal to the
  provider's `verify_token` → hub.challenge echoed); POST carries X-Hub-Signature-256, the
  HMAC-SHA256 of the raw body under the provider's `app_secret`.
- Telegram (`/webhooks/telegram/{provider_id}`): POST with X-Telegram-Bot-Api-Secret-Token equal
  to the provider's `secret_token` (given to setWebhook).

The signature is checked before the body is parsed (bad → 403, then malformed → 400). Messages
from customers become inbound interactions of the customer found by the sender's id (created when
unknown) and are announced to the inbox; delivery and read reports move our sends' statuses.
A failure while storing answers 503, so that the app delivers the webhook again (a repeat of a
message already stored is recognised by its id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shopkeeper import clock
from shopkeeper.channels.social import messenger, telegram, whatsapp
from shopkeeper.channels.social.parsed import Incoming, Report
from shopkeeper.channels.webhook_http import (
    Unavailable,
    hub_signature_ok,
    parse_json,
    provider_row,
    same_secret,
    secret,
)
from shopkeeper.customers.service import identity_owner
from shopkeeper.db.scoping import scoped
from shopkeeper.db.session import Database
from shopkeeper.errors import Forbidden, ShopkeeperError
from shopkeeper.messaging.inbound import receive
from shopkeeper.messaging.models import ChannelProvider, Send
from shopkeeper.messaging.status import find_by_provider_id, record
from shopkeeper.runtime import get_runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])

Parser = Callable[[dict[str, Any]], tuple[list[Incoming], list[Report]]]
# channel → (provider types, identity kind of the sender, the settings key naming our account)
META: dict[str, tuple[tuple[str, ...], str, str, Parser]] = {
    "whatsapp": (("cloud_api",), "phone", "phone_number_id", whatsapp.parse),
    "messenger": (("graph_api",), "messenger_psid", "page_id", messenger.parse),
}
MAX_READ_RECEIPTS = 200


# -- Meta: handshake and signed notifications -------------------------------------------------
def _handshake(request: Request, channel: str, provider_id: str) -> PlainTextResponse:
    params = request.query_params
    with get_runtime(request).db.session() as session:
        row = provider_row(session, provider_id, channel, META[channel][0])
        expected = secret(row.settings, "verify_token")
    challenge = params.get("hub.challenge")
    if params.get("hub.mode") != "subscribe" or not same_secret(expected, params.get("hub.verify_token")):
        raise Forbidden("hub.verify_token does not match", field="hub.verify_token")
    if not challenge or len(challenge) > 200:
        raise Forbidden("hub.challenge: required", field="hub.challenge")
    return PlainTextResponse(challenge)


@router.get("/webhooks/whatsapp/{provider_id}", include_in_schema=False)
def whatsapp_handshake(request: Request, provider_id: str) -> PlainTextResponse:
    return _handshake(request, "whatsapp", provider_id)


@router.get("/webhooks/messenger/{provider_id}", include_in_schema=False)
def messenger_handshake(request: Request, provider_id: str) -> PlainTextResponse:
    return _handshake(request, "messenger", provider_id)


async def _meta(request: Request, channel: str, provider_id: str) -> JSONResponse:
    db = get_runtime(request).db
    body = await request.body()
    signature = request.headers.get("X-Hub-Signature-256")
    counts = await run_in_threadpool(_meta_notification, db, channel, provider_id, body, signature, clock.now())
    return JSONResponse(counts)


@router.post("/webhooks/whatsapp/{provider_id}", include_in_schema=False)
async def whatsapp_notification(request: Request, provider_id: str) -> JSONResponse:
    return await _meta(request, "whatsapp", provider_id)


@router.post("/webhooks/messenger/{provider_id}", include_in_schema=False)
async def messenger_notification(request: Request, provider_id: str) -> JSONResponse:
    return await _meta(request, "messenger", provider_id)


def _meta_notification(
    db: Database, channel: str, provider_id: str, body: bytes, signature: str | None, now: datetime
) -> dict[str, int]:
    types, kind, account_key, parser = META[channel]
    # Checked in a reading session: an unsigned request never takes the write lock.
    with db.session() as session:
        row = provider_row(session, provider_id, channel, types)
        if not hub_signature_ok(secret(row.settings, "app_secret"), body, signature):
            raise Forbidden("X-Hub-Signature-256 does not match the body", field="X-Hub-Signature-256")
    incoming, reports = parser(parse_json(body))
    return _store(db, row, kind, account_key, incoming, reports, now)


# -- Telegram -----------------------------------------------------------------------------------
@router.post("/webhooks/telegram/{provider_id}", include_in_schema=False)
async def telegram_update(request: Request, provider_id: str) -> JSONResponse:
    db = get_runtime(request).db
    body = await request.body()
    token = request.headers.get(telegram.SECRET_HEADER)
    counts = await run_in_threadpool(_telegram, db, provider_id, body, token, clock.now())
    return JSONResponse(counts)


def _telegram(db: Database, provider_id: str, body: bytes, token: str | None, now: datetime) -> dict[str, int]:
    with db.session() as session:
        row = provider_row(session, provider_id, "telegram", ("bot_api",))
        if not same_secret(secret(row.settings, "secret_token"), token):
            raise Forbidden(f"{telegram.SECRET_HEADER} does not match", field=telegram.SECRET_HEADER)
    incoming = telegram.parse(parse_json(body))
    return _store(db, row, "telegram_chat_id", None, incoming, [], now)


# -- storing --------------------------------------------------------------------------------------
def _store(
    db: Database,
    row: ChannelProvider,
    kind: str,
    account_key: str | None,
    incoming: Sequence[Incoming],
    reports: Sequence[Report],
    now: datetime,
) -> dict[str, int]:
    counts = {"messages": 0, "repeats": 0, "reports": 0, "ignored": 0}
    try:
        with db.session(write=True) as session:
            accounts = _accounts(session, row, account_key)
            for item in incoming:
                provider = _provider_for(item, row, accounts, account_key)
                if provider is None:
                    counts["ignored"] += 1  # to a number or page this workspace has not configured
                    continue
                stored = receive(
                    session,
                    row.workspace_id,
                    channel=row.channel,
                    kind=kind,
                    address=item.sender,
                    text=item.text,
                    now=now,
                    provider=provider,
                    provider_message_id=item.message_id,
                    data=item.data,
                    traits=item.traits,
                )
                counts["messages" if stored else "repeats"] += 1
            for report in reports:
                moved = _report(session, row, report, now)
                counts["reports" if moved else "ignored"] += 1
    except ShopkeeperError:
        raise
    except Exception as exc:
        log.exception("webhook of provider %s: storing failed", row.id)
        raise Unavailable("could not store the notification; deliver it again later") from exc
    return counts


def _accounts(session: Session, row: ChannelProvider, account_key: str | None) -> dict[str, str]:
    """Our numbers (or pages) in this workspace → the name of the provider that holds each."""
    if account_key is None:
        return {}
    found: dict[str, str] = {}
    rows = session.scalars(
        scoped(ChannelProvider, row.workspace_id)
        .where(ChannelProvider.channel == row.channel)
        .order_by(ChannelProvider.priority, ChannelProvider.name)
    )
    for other in rows:
        account = other.settings.get(account_key)
        if isinstance(account, str) and account:
            found.setdefault(account, other.name)
    return found


def _provider_for(
    item: Incoming, row: ChannelProvider, accounts: dict[str, str], account_key: str | None
) -> str | None:
    """The provider a message came through. One Meta app may serve several numbers (or pages)
    and calls one URL for all of them: a message to an account that this workspace has not
    configured is someone else's, and None says so."""
    if account_key is None or not item.account:
        return row.name
    if item.account in accounts:
        return accounts[item.account]
    return None if row.settings.get(account_key) else row.name


def _report(session: Session, row: ChannelProvider, report: Report, now: datetime) -> bool:
    ws = row.workspace_id
    if report.watermark is not None:
        return _read_receipt(session, row, report, now)
    moved = False
    for message_id in report.message_ids:
        send = find_by_provider_id(session, message_id, ws)
        if send is None and report.send_ref:
            # The report overtook the worker recording the message id: our send id came back.
            candidate = session.scalar(scoped(Send, ws).where(Send.id == report.send_ref))
            if candidate is not None and candidate.provider_message_id in (None, message_id):
                send = candidate
        if send is None or send.channel != row.channel:
            continue
        moved |= record(session, send, report.status, now, report.reason, provider=row.name, **report.data)
    return moved


def _read_receipt(session: Session, row: ChannelProvider, report: Report, now: datetime) -> bool:
    """Messenger's read receipt: every message to this person sent before the watermark."""
    assert report.watermark is not None and report.recipient is not None
    customer_id = identity_owner(session, row.workspace_id, "messenger_psid", report.recipient)
    if customer_id is None:
        return False
    sends = session.scalars(
        scoped(Send, row.workspace_id)
        .where(
            Send.customer_id == customer_id,
            Send.channel == row.channel,
            Send.to_address == report.recipient,
            Send.status.in_(("sent", "delivered")),
            Send.sent_at <= report.watermark,
        )
        .order_by(Send.created_at.desc())
        .limit(MAX_READ_RECEIPTS)
    )
    moved = False
    for send in sends:
        moved |= record(session, send, "opened", now, None, provider=row.name, read_before=report.watermark.isoformat())
    return moved
