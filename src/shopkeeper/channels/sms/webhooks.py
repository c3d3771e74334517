"""Twilio-shaped webhooks: delivery status reports and inbound texts, both signed with the
provider's auth token (X-Twilio-Signature). Public routes: a bad signature is a 403, a malformed
request a 400.

- `POST /webhooks/sms/{provider_id}/status`: the provider's report on a message we sent moves
  the send's status (queued/sent → sent, delivered → delivered, undelivered/failed → bounced
  when the error says the number is wrong — and then the number is suppressed — else failed).
- `POST /webhooks/sms/{provider_id}/inbound`: a text from a customer. The sender is found by
  phone number (an unknown number becomes a new customer); STOP/START/HELP are applied and
  answered in TwiML; any other text is stored as an inbound interaction and announced to the
  inbox (`messaging.inbound.on_inbound`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.channels.sms.provider import BOUNCE_ERRORS, map_status
from shopkeeper.channels.sms.signature import HEADER, verify
from shopkeeper.channels.webhook_http import Arrival, Unavailable, parse_form, provider_row, secret
from shopkeeper.consent.keywords import handle_sms_keyword
from shopkeeper.consent.service import suppress
from shopkeeper.customers.normalize import normalise_phone
from shopkeeper.db.scoping import scoped
from shopkeeper.db.session import Database
from shopkeeper.errors import Forbidden, Invalid, ShopkeeperError
from shopkeeper.messaging.inbound import already_received, receive, record_reply, resolve_sender
from shopkeeper.messaging.models import ChannelProvider, Send
from shopkeeper.messaging.status import find_by_provider_id, record
from shopkeeper.runtime import get_runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
TYPES = ("twilio",)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_MEDIA = 10


def twiml(reply: str | None) -> Response:
    if reply is None:
        return Response(EMPTY_TWIML, media_type="text/xml")
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(reply)}</Message></Response>'
    return Response(body, media_type="text/xml")


class Signed:
    """A webhook request whose signature checked out against the provider row it names."""

    def __init__(self, row: ChannelProvider, params: dict[str, str]) -> None:
        self.row = row
        self.params = params

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value else None

    def need(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise Invalid(f"{name}: required", field=name)
        return value[:300]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook request as received: where it arrived, its form and its signature."""

    provider_id: str
    arrival: Arrival
    pairs: list[tuple[str, str]]
    signature: str | None

    def check(self, session: Session) -> Signed:
        row = provider_row(session, self.provider_id, "sms", TYPES)
        urls = self.arrival.urls(row.settings)
        if not verify(secret(row.settings, "auth_token"), urls, self.pairs, self.signature):
            raise Forbidden("the request signature does not match", field=HEADER)
        return Signed(row, dict(self.pairs))


async def _read(request: Request, provider_id: str) -> tuple[Database, Delivery]:
    runtime = get_runtime(request)
    pairs = parse_form(await request.body())
    arrival = Arrival.of(request, runtime.settings.public_url)
    return runtime.db, Delivery(provider_id, arrival, pairs, request.headers.get(HEADER))


# -- status reports -------------------------------------------------------------------------
@router.post("/webhooks/sms/{provider_id}/status", include_in_schema=False)
async def status_report(request: Request, provider_id: str) -> Response:
    db, delivery = await _read(request, provider_id)
    send_ref = request.query_params.get("send")
    await run_in_threadpool(_status, db, delivery, send_ref, clock.now())
    return Response(status_code=204)


def _status(db: Database, delivery: Delivery, send_ref: str | None, now: datetime) -> None:
    with db.session() as session:  # an unsigned request never takes the write lock
        signed = delivery.check(session)
    with db.session(write=True) as session:
        row = signed.row
        sid = signed.need("MessageSid")
        provider_status = signed.need("MessageStatus").lower()
        error = signed.get("ErrorCode")
        send = _the_send(session, row.workspace_id, sid, send_ref)
        ours = map_status(provider_status, error)
        if send is None or ours is None:
            return  # a message we did not send (or a status we do not track): nothing to do
        reason = None
        if error is not None:
            what = BOUNCE_ERRORS.get(error) or signed.get("ErrorMessage") or "see the provider's error list"
            reason = f"{provider_status}: error {error} ({what})"[:500]
        extra: dict[str, Any] = {"error_code": error} if error else {}
        record(session, send, ours, now, reason, provider=row.name, provider_status=provider_status, **extra)
        if ours == "bounced" and send.to_address:
            try:
                with session.begin_nested():
                    suppress(
                        session,
                        row.workspace_id,
                        "sms",
                        send.to_address,
                        "stop" if error == "21610" else "hard_bounce",
                        now,
                        note=f"{row.name} reported {reason} for send {send.id}"[:500],
                    )
            except ShopkeeperError as exc:
                log.warning("sms status: could not suppress the number of %s: %s", send.id, exc.message)


def _the_send(session: Session, workspace_id: str, sid: str, send_ref: str | None) -> Send | None:
    """By the send id our callback URL carries (a report can overtake the worker recording the
    provider's id), else by the provider's message id."""
    if send_ref:
        send = session.scalar(scoped(Send, workspace_id).where(Send.id == send_ref[:40]))
        if send is not None and send.provider_message_id in (None, sid):
            return send
    return find_by_provider_id(session, sid, workspace_id)


# -- inbound texts --------------------------------------------------------------------------
@router.post("/webhooks/sms/{provider_id}/inbound", include_in_schema=False)
async def inbound_text(request: Request, provider_id: str) -> Response:
    db, delivery = await _read(request, provider_id)
    client = request.client.host if request.client else None
    reply = await run_in_threadpool(_inbound, db, delivery, client, clock.now())
    return twiml(reply)


def _inbound(db: Database, delivery: Delivery, client: str | None, now: datetime) -> str | None:
    with db.session() as session:  # an unsigned request never takes the write lock
        signed = delivery.check(session)
    try:
        return _take_text(db, signed, client, now)
    except ShopkeeperError:
        raise
    except Exception as exc:
        log.exception("inbound sms of provider %s: storing failed", signed.row.id)
        raise Unavailable("could not store the message; deliver it again later") from exc


def _take_text(db: Database, signed: Signed, client: str | None, now: datetime) -> str | None:
    with db.session(write=True) as session:
        row = signed.row
        sid = signed.get("MessageSid") or signed.need("SmsMessageSid")
        raw_from = signed.need("From")
        body = (signed.get("Body") or "")[:10_000]
        ws = session.get(Workspace, row.workspace_id)
        assert ws is not None
        region = (ws.settings or {}).get("default_phone_region")
        phone = normalise_phone(raw_from, region if isinstance(region, str) else None)
        if phone is None:
            raise Invalid(f"From: {raw_from!r} is not a phone number", field="From")
        if already_received(session, ws.id, "sms", sid) is not None:
            return None  # a repeated delivery: stored (and answered) the first time
        customer_id, created = resolve_sender(session, ws.id, "phone", phone, now, trigger=f"inbound sms {sid}")
        data = _details(signed)
        keyword = handle_sms_keyword(session, ws, phone, body, now, ip=client)
        if keyword.action is not None:
            data |= {"keyword": keyword.keyword, "action": keyword.action}
        receive(
            session,
            ws.id,
            channel="sms",
            kind="phone",
            address=phone,
            text=body,
            now=now,
            provider=row.name,
            provider_message_id=sid,
            data=data,
            customer_id=customer_id,
            customer_created=created,
            notify=keyword.action is None,  # a keyword is consent, not conversation
        )
        if keyword.reply is None:
            return None
        record_reply(
            session,
            ws.id,
            customer_id=customer_id,
            channel="sms",
            address=phone,
            text=keyword.reply,
            now=now,
            provider=row.name,
            data={"keyword_reply": keyword.action, "in_reply_to": sid},
        )
        return keyword.reply


def _details(signed: Signed) -> dict[str, object]:
    """What else the provider told about the text: our number it went to, segments, media."""
    data: dict[str, object] = {}
    if signed.get("To"):
        data["to"] = signed.need("To")
    segments = signed.get("NumSegments")
    if segments and segments.isdigit():
        data["segments"] = int(segments)
    media = signed.get("NumMedia")
    if media and media.isdigit() and int(media) > 0:
        data["media"] = [
            url[:2000] for index in range(min(int(media), MAX_MEDIA)) if (url := signed.get(f"MediaUrl{index}"))
        ]
    return data
