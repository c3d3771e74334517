"""Public consent pages reached by signed links: preference centre, unsubscribe, opt-in confirmation.

There is no login and no CSRF token: the signed token in the path is the capability, and each
page accepts only tokens minted for it (a preference link cannot confirm an opt-in). GET never
changes anything, because mail scanners and link previews fetch every link in a message; every
change is a POST from a plain HTML form, so the pages work without JavaScript. A link that cannot
be used gets a page saying why and what to do (400 or 410), never a traceback.

Responses are not cached and send no Referer, so the token in the URL does not leak to caches or
other sites, and they refuse to be framed, so a one-click page cannot be clickjacked.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from shopkeeper import clock
from shopkeeper.consent.addresses import ADDRESS_KINDS, SUPPRESSIBLE_CHANNELS
from shopkeeper.consent.double_opt_in import has_opt_in_listeners, request_opt_in
from shopkeeper.consent.models import ALL_TOPICS, CHANNELS, Subscription, Topic
from shopkeeper.consent.policy import ContactPolicy
from shopkeeper.consent.service import (
    FREQUENCIES,
    Proof,
    preference_of,
    set_preference,
    set_status,
    standing,
    subscriptions_of,
    suppressions_for,
    topics,
)
from shopkeeper.consent.tokens import PATHS, Link, LinkError, LinkExpired, make_token, verify
from shopkeeper.customers.models import Identity
from shopkeeper.db.scoping import scoped
from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid
from shopkeeper.runtime import get_runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["public consent pages"])

_env = Environment(
    loader=PackageLoader("shopkeeper", "web/templates"),
    autoescape=select_autoescape(("html",)),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
_PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "The link is malformed, tampered with or meant for another page",
        "content": {"text/html": {}},
    },
    410: {"description": "The link has expired, or its customer no longer exists", "content": {"text/html": {}}},
}

CHANNEL_TITLES = {
    "email": "Email",
    "sms": "Text messages (SMS)",
    "push": "Push notifications",
    "chat": "In-app and web chat",
    "whatsapp": "WhatsApp",
    "voice": "Phone calls",
    "webhook": "Webhooks",
}
# What one message of a channel is called in a sentence ("Stop every email from …").
MESSAGE_NOUNS = {
    "email": ("email", "emails"),
    "sms": ("text message", "text messages"),
    "push": ("push notification", "push notifications"),
    "chat": ("chat message", "chat messages"),
    "whatsapp": ("WhatsApp message", "WhatsApp messages"),
    "voice": ("phone call", "phone calls"),
    "webhook": ("message", "messages"),
}
FREQUENCY_LABELS = {
    "any": "Whenever there is something for me",
    "daily": "At most once a day",
    "weekly": "At most once a week",
    "monthly": "At most once a month",
}
CONSENT_STATUS_TEXT = {
    "opted_in": "Status: subscribed.",
    "opted_out": "Status: unsubscribed.",
    "pending": "Status: waiting for you to confirm by email.",
    "unknown": "Status: not chosen yet.",
}
SUPPRESSION_NOTES = {
    "stop": "You replied STOP, so we send no texts to this number. Reply START to one of our texts to get them again.",
    "hard_bounce": "Messages to this address could not be delivered, so we no longer send to it.",
    "complaint": "You reported one of our messages as unwanted, so we no longer send to this address.",
}
FRIENDLY_ERRORS = {
    "quiet_start": "For quiet hours, give two times of day such as 21:00 and 08:00, or leave both empty.",
    "quiet_end": "For quiet hours, give two times of day such as 21:00 and 08:00, or leave both empty.",
    "frequency": "Choose how often we may contact you.",
    "preferred_channel": "Choose one of the channels listed as your preferred channel.",
}
CONFIRM_BUTTON = "Yes, subscribe me to {topic}"
RESEND_BUTTON = "Send me a new confirmation link"
ONE_CLICK_WORDING = "One-click unsubscribe from the mail client (List-Unsubscribe=One-Click)"
BARE_POST_WORDING = "Unsubscribe link (POST without a form)"


class TopicGone(LinkError):
    code = "gone"
    status = 410
    title = "This subscription is no longer offered"
    advice = "There is nothing to confirm: the list this link was for has been removed."


class ConfirmationExpired(LinkExpired):
    title = "This confirmation link has expired"
    advice = "Links to confirm a subscription work for a limited time, and this one is too old."


Form = Mapping[str, str]
Client = tuple[str | None, str | None]  # (IP address, user agent)


# -- plumbing -----------------------------------------------------------------------------------
def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(f"consent/{template}").render(**context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _error_page(
    exc: LinkError,
    *,
    advice: str | None = None,
    workspace_name: str | None = None,
    resend: str | None = None,
    preferences_url: str | None = None,
) -> HTMLResponse:
    log.info("public consent page refused a link: %s", exc.message)
    return _page(
        "link_error.html",
        exc.status,
        workspace_name=workspace_name,
        title=exc.title,
        advice=advice or exc.advice,
        resend=resend,
        preferences_url=preferences_url,
    )


async def _form(request: Request) -> dict[str, str] | None:
    """The posted fields (first value of each; files ignored), or None if the body is no form."""
    try:
        data = await request.form()
    except (HTTPException, MultiPartException):
        return None
    return {key: value for key, value in data.multi_items()[::-1] if isinstance(value, str)}


def _client(request: Request) -> Client:
    return (request.client.host if request.client else None, request.headers.get("user-agent"))


def _db(request: Request) -> Database:
    return get_runtime(request).db


def _preferences_path(link: Link, now: datetime) -> str:
    return f"{PATHS['preferences']}/{make_token(link.workspace, link.customer.id, 'preferences', now)}"


def _proof(source: str, wording: str, client: Client) -> Proof:
    return Proof(source=source, wording=wording, ip=client[0], user_agent=client[1])


# -- the preference centre ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Choice:
    """One checkbox: `label` is shown verbatim and recorded verbatim as the consent wording."""

    id: str
    field: str
    channel: str
    topic: str
    label: str
    checked: bool
    status: str


@dataclass(frozen=True, slots=True)
class ChannelChoices:
    channel: str
    title: str
    address: str | None
    note: str | None
    topics: list[Choice]
    stop: Choice


@dataclass(frozen=True, slots=True)
class Centre:
    """Everything the preference page shows, read in a handful of queries."""

    channels: list[ChannelChoices]
    preferred_options: list[tuple[str, str]]
    preferred: str
    frequency: str
    quiet_start: str
    quiet_end: str
    timezone: str

    def context(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "preferred_options": self.preferred_options,
            "preferred": self.preferred,
            "frequency": self.frequency,
            "frequencies": [(value, FREQUENCY_LABELS.get(value, value)) for value in FREQUENCIES],
            "quiet_start": self.quiet_start,
            "quiet_end": self.quiet_end,
            "timezone": self.timezone,
        }


def _addresses(session: Session, link: Link) -> dict[str, list[str]]:
    """The customer's addresses per channel they are reachable on, in channel order."""
    kinds = sorted({kind for channel_kinds in ADDRESS_KINDS.values() for kind in channel_kinds})
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, value in session.execute(
        select(Identity.kind, Identity.value)
        .where(
            Identity.workspace_id == link.workspace.id,
            Identity.customer_id.in_(link.customer_ids),
            Identity.kind.in_(kinds),
        )
        .order_by(Identity.created_at, Identity.id)
    ):
        by_kind[kind].append(value)
    reach = {channel: [v for kind in ADDRESS_KINDS[channel] for v in by_kind[kind]] for channel in CHANNELS}
    return {channel: values for channel, values in reach.items() if values}


def _address_hint(channel: str, values: list[str]) -> str | None:
    """Enough of an address to recognise it, not enough to learn it from a forwarded link."""
    kind = ADDRESS_KINDS[channel][0]
    if kind == "email":
        local, _, domain = values[0].partition("@")
        shown = f"{local[:1]}•••@{domain}"
    elif kind == "phone":
        shown = f"number ending {values[0][-4:]}"
    elif kind == "device_token":
        return f"{len(values)} device{'s' if len(values) > 1 else ''}"
    else:
        return None
    return shown if len(values) == 1 else f"{shown} and {len(values) - 1} more"


def _effective(rows: list[Subscription]) -> str:
    """The same rule as `service.standing`: an opt-out on any merged profile wins, else the latest."""
    if not rows:
        return "unknown"
    if any(r.status == "opted_out" for r in rows):
        return "opted_out"
    return max(rows, key=lambda r: r.updated_at).status


def _timezone(link: Link) -> str:
    if link.customer.timezone:
        return link.customer.timezone
    try:
        return ContactPolicy.of(link.workspace).default_timezone
    except ValidationError:
        return "UTC"


def _centre(session: Session, link: Link) -> Centre:
    ws = link.workspace
    reach = _addresses(session, link)
    statuses: dict[tuple[str, str], list[Subscription]] = defaultdict(list)
    for row in subscriptions_of(session, ws.id, link.customer_ids):
        statuses[(row.channel, row.topic)].append(row)
    active = topics(session, ws.id)
    channels: list[ChannelChoices] = []
    for index, (channel, values) in enumerate(reach.items()):
        noun, plural = MESSAGE_NOUNS[channel]
        choices = []
        for number, topic in enumerate(t for t in active if channel in t.channels):
            status = _effective(statuses[(channel, topic.key)])
            if topic.lawful_basis == "consent":
                checked, text = status in ("opted_in", "pending"), CONSENT_STATUS_TEXT[status]
            elif status == "opted_out":
                checked, text = False, "Status: off (you turned it off)."
            else:
                checked, text = True, "Status: on, unless you turn it off."
            choices.append(
                Choice(
                    id=f"c{index}-t{number}",
                    field=f"topic:{channel}:{topic.key}",
                    channel=channel,
                    topic=topic.key,
                    label=f"{topic.name}: {topic.purpose}",
                    checked=checked,
                    status=text,
                )
            )
        stopped = _effective(statuses[(channel, ALL_TOPICS)]) == "opted_out"
        stop = Choice(
            id=f"c{index}-stop",
            field=f"stop:{channel}",
            channel=channel,
            topic=ALL_TOPICS,
            label=f"Stop every {noun} from {ws.name}, including order and account messages",
            checked=stopped,
            status=(
                f"All {plural} are stopped."
                if stopped
                else "To stop only some messages, untick their topics above instead."
                if choices
                else f"We only send {plural} that concern you, such as order updates and replies."
            ),
        )
        note = None
        if channel in SUPPRESSIBLE_CHANNELS:
            suppressed = suppressions_for(session, ws.id, channel, values)
            if suppressed:
                note = SUPPRESSION_NOTES.get(suppressed[0].reason, "We no longer send to this address.")
        channels.append(
            ChannelChoices(channel, CHANNEL_TITLES[channel], _address_hint(channel, values), note, choices, stop)
        )
    preference = preference_of(session, ws.id, link.customer.id)
    preferred = (preference.preferred_channel if preference else None) or ""
    options = [("", "No preference"), *((c, CHANNEL_TITLES[c]) for c in reach if c != "webhook")]
    if preferred and preferred not in reach:
        options.append((preferred, CHANNEL_TITLES.get(preferred, preferred)))
    return Centre(
        channels=channels,
        preferred_options=options,
        preferred=preferred,
        frequency=preference.frequency if preference else "any",
        quiet_start=(preference.quiet_start if preference else None) or "",
        quiet_end=(preference.quiet_end if preference else None) or "",
        timezone=_timezone(link),
    )


def _apply_choices(
    session: Session, link: Link, centre: Centre, form: Form, client: Client, now: datetime
) -> list[str]:
    """Apply each checkbox the customer changed (compared with the page they saw, so that saving
    the page never turns an untouched 'not chosen yet' into an opt-out). Returns notices."""
    ws, customer_id = link.workspace, link.customer.id
    names = {t.key: t.name for t in topics(session, ws.id)}
    notices: list[str] = []
    for channel in centre.channels:
        for choice in (*channel.topics, channel.stop):
            seen = form.get(f"was:{choice.field}")
            if seen not in ("0", "1"):
                continue  # not on the page the customer saw
            wants = choice.field in form
            if wants == (seen == "1"):
                continue
            proof = _proof("preference-centre", choice.label, client)
            if choice.topic == ALL_TOPICS:
                status = "opted_out" if wants else "unknown"
                set_status(session, ws.id, customer_id, choice.channel, ALL_TOPICS, status, proof, now)
            elif wants:
                request = request_opt_in(session, ws, customer_id, choice.channel, choice.topic, proof, now)
                if request.needs_confirmation:
                    name = names.get(choice.topic, choice.topic)
                    notices.append(
                        f"{name} starts once you confirm it with the link we are emailing you."
                        if has_opt_in_listeners()
                        else f"{name} needs a confirmation by email, which we cannot send at the moment."
                    )
            else:
                set_status(session, ws.id, customer_id, choice.channel, choice.topic, "opted_out", proof, now)
    return notices


def _apply_pace(session: Session, link: Link, centre: Centre, form: Form, now: datetime) -> None:
    """Preferred channel, frequency and quiet hours; written only when something differs."""
    current = (centre.preferred or None, centre.frequency, centre.quiet_start or None, centre.quiet_end or None)
    preferred = form.get("preferred_channel", centre.preferred).strip() or None
    if preferred is not None and preferred not in {value for value, _ in centre.preferred_options}:
        raise Invalid("preferred_channel: not one of the channels offered", field="preferred_channel")
    wanted = (
        preferred,
        form.get("frequency", centre.frequency).strip(),
        form.get("quiet_start", centre.quiet_start).strip() or None,
        form.get("quiet_end", centre.quiet_end).strip() or None,
    )
    if wanted == current:
        return
    if wanted[2] is not None and wanted[3] is not None and wanted[2] == wanted[3]:
        raise Invalid("Quiet hours need a start and an end that differ.", field="quiet_hours")
    set_preference(
        session,
        link.workspace.id,
        link.customer.id,
        preferred_channel=wanted[0],
        frequency=wanted[1],
        quiet_start=wanted[2],
        quiet_end=wanted[3],
        now=now,
    )


def _show_preferences(
    db: Database,
    token: str,
    now: datetime,
    *,
    status: int = 200,
    saved: bool = False,
    notices: list[str] | None = None,
    error: str | None = None,
    error_field: str | None = None,
) -> HTMLResponse:
    with db.session() as session:
        try:
            link = verify(session, token, "preferences", now)
        except LinkError as exc:
            return _error_page(exc)
        centre = _centre(session, link)
        name = link.workspace.name
    return _page(
        "preferences.html",
        status,
        workspace_name=name,
        saved=saved,
        notices=notices or [],
        error=error,
        error_field=error_field,
        **centre.context(),
    )


def _save_preferences(db: Database, token: str, form: Form | None, client: Client, now: datetime) -> HTMLResponse:
    if form is None:
        return _show_preferences(db, token, now, status=400, error="The form could not be read; please try again.")
    try:
        with db.session(write=True) as session:  # one transaction: every change lands, or none
            link = verify(session, token, "preferences", now)
            centre = _centre(session, link)
            notices = _apply_choices(session, link, centre, form, client, now)
            _apply_pace(session, link, centre, form, now)
    except LinkError as exc:
        return _error_page(exc)
    except Invalid as exc:
        message = FRIENDLY_ERRORS.get(exc.field or "", exc.message)
        return _show_preferences(db, token, now, status=400, error=message, error_field=exc.field)
    return _show_preferences(db, token, now, saved=True, notices=notices)


@router.get(
    "/preferences/{token}",
    response_class=HTMLResponse,
    responses=_PAGE_RESPONSES,
    summary="Preference centre: the customer's channels, topics, pace and quiet hours (signed link)",
)
async def preference_centre(request: Request, token: str) -> HTMLResponse:
    return await run_in_threadpool(_show_preferences, _db(request), token, clock.now())


@router.post(
    "/preferences/{token}",
    response_class=HTMLResponse,
    responses=_PAGE_RESPONSES,
    summary="Save the preference centre's form (plain form post; the signed link is the credential)",
)
async def save_preferences(request: Request, token: str) -> HTMLResponse:
    form = await _form(request)
    return await run_in_threadpool(_save_preferences, _db(request), token, form, _client(request), clock.now())


# -- unsubscribe (RFC 8058) ---------------------------------------------------------------------
def _unsubscribe_target(session: Session, link: Link) -> tuple[str, Topic | None]:
    """The token's channel and topic. A topic that no longer exists (or left the channel) falls
    back to the whole channel: an unsubscribe link must always stop what it was sent with."""
    channel = link.channel if link.channel in CHANNELS else "email"
    if link.topic == ALL_TOPICS:
        return channel, None
    topic = session.scalar(scoped(Topic, link.workspace.id).where(Topic.key == link.topic))
    if topic is None or channel not in topic.channels:
        return channel, None
    return channel, topic


def _unsubscribe(
    db: Database, token: str, form: Form | None, client: Client, now: datetime, *, act: bool
) -> HTMLResponse:
    with db.session(write=act) as session:
        try:
            link = verify(session, token, "unsubscribe", now)
        except LinkError as exc:
            return _error_page(exc)
        ws = link.workspace
        channel, topic = _unsubscribe_target(session, link)
        _, plural = MESSAGE_NOUNS[channel]
        if topic is None:
            subject, button = f"all {plural}", f"Stop all {plural}"
            heading = f"Stop all {plural} from {ws.name}?"
            detail = f"You will receive no more {plural} from {ws.name}, including order and account messages."
        else:
            subject, button = f"{topic.name} ({plural})", f"Unsubscribe from {topic.name}"
            heading = f"Unsubscribe from {topic.name}?"
            detail = f"You will no longer receive {topic.name} {plural} from {ws.name}."
        key = topic.key if topic else ALL_TOPICS
        if act:
            form = form or {}
            if form.get("List-Unsubscribe", "").strip().lower() == "one-click":
                wording = ONE_CLICK_WORDING
            elif form.get("via") == "page":
                wording = button
            else:
                wording = BARE_POST_WORDING
            proof = _proof("unsubscribe-link", wording, client)
            set_status(session, ws.id, link.customer.id, channel, key, "opted_out", proof, now)
            done = True
        else:
            state = standing(session, ws.id, link.customer_ids, channel, topic.key if topic else None)
            done = state.channel_wide == "opted_out" or (topic is not None and state.status == "opted_out")
        preferences_url = _preferences_path(link, now)
    if done:
        heading, detail = "You are unsubscribed", f"You will receive no more {subject} from {ws.name}."
    return _page(
        "unsubscribe.html",
        workspace_name=ws.name,
        done=done,
        heading=heading,
        message=detail,
        button=button,
        preferences_url=preferences_url,
    )


@router.get(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    responses=_PAGE_RESPONSES,
    summary="Unsubscribe landing page: changes nothing (mail scanners prefetch links); its button posts",
)
async def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    return await run_in_threadpool(_unsubscribe, _db(request), token, None, _client(request), clock.now(), act=False)


@router.post(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    responses=_PAGE_RESPONSES,
    summary="One-click unsubscribe (RFC 8058: body List-Unsubscribe=One-Click, or empty); idempotent",
)
async def unsubscribe(request: Request, token: str) -> HTMLResponse:
    form = await _form(request)
    return await run_in_threadpool(_unsubscribe, _db(request), token, form, _client(request), clock.now(), act=True)


# -- double opt-in confirmation -----------------------------------------------------------------
def _confirm(db: Database, token: str, form: Form | None, client: Client, now: datetime, *, act: bool) -> HTMLResponse:
    action = (form or {}).get("action", "confirm")
    with db.session(write=act) as session:
        try:
            link = verify(session, token, "confirm", now, allow_expired=True)
            topic = session.scalar(scoped(Topic, link.workspace.id).where(Topic.key == link.topic))
            if topic is None or link.channel not in topic.channels:
                raise TopicGone(f"topic {link.topic!r} is not offered on {link.channel} any more")
        except LinkError as exc:
            return _error_page(exc)
        ws = link.workspace
        status = standing(session, ws.id, link.customer_ids, link.channel, topic.key).status
        preferences_url = _preferences_path(link, now)
        page: dict[str, Any] = {"workspace_name": ws.name, "preferences_url": preferences_url, "action": "confirm"}
        button = CONFIRM_BUTTON.format(topic=topic.name)
        subscribed = f"You are subscribed to {topic.name}"
        if status == "opted_in":
            message = "Your subscription is confirmed: there is nothing more to do."
            return _page("confirm.html", **page, heading=subscribed, message=message, done=True, button=None)
        if act and action == "resend" and status == "pending":
            proof = _proof("double-opt-in", RESEND_BUTTON, client)
            request_opt_in(session, ws, link.customer.id, link.channel, topic.key, proof, now)
            if has_opt_in_listeners():
                heading, message = "A new link is on its way", "We are emailing you a new confirmation link."
            else:
                heading = "We could not send a new link"
                message = "We cannot send confirmation emails at the moment. Please subscribe again later."
            return _page("confirm.html", **page, heading=heading, message=message, done=True, button=None)
        if link.expired:
            expired = ConfirmationExpired(f"confirmation link for {topic.key} expired")
            return _error_page(
                expired,
                advice=f"{expired.advice} {'We can send you a new one.' if status == 'pending' else ''}".strip(),
                workspace_name=ws.name,
                resend=RESEND_BUTTON if status == "pending" else None,
                preferences_url=preferences_url,
            )
        if not act or action != "confirm":
            return _page(
                "confirm.html",
                **page,
                heading=f"Confirm your subscription to {topic.name}",
                message=f"{ws.name} will send you {topic.name} by email: {topic.purpose}.",
                done=False,
                button=button,
            )
        set_status(
            session,
            ws.id,
            link.customer.id,
            link.channel,
            topic.key,
            "opted_in",
            _proof("double-opt-in", button, client),
            now,
        )
    return _page(
        "confirm.html",
        **page,
        heading=subscribed,
        message="Thank you. You can change this at any time in your preferences.",
        done=True,
        button=None,
    )


@router.get(
    "/consent/confirm/{token}",
    response_class=HTMLResponse,
    responses=_PAGE_RESPONSES,
    summary="Double opt-in confirmation page: changes nothing; its button posts",
)
async def confirm_page(request: Request, token: str) -> HTMLResponse:
    return await run_in_threadpool(_confirm, _db(request), token, None, _client(request), clock.now(), act=False)


@router.post(
    "/consent/confirm/{token}",
    response_class=HTMLResponse,
    responses=_PAGE_RESPONSES,
    summary="Confirm a double opt-in (action=confirm), or ask for a new link (action=resend); idempotent",
)
async def confirm(request: Request, token: str) -> HTMLResponse:
    form = await _form(request)
    return await run_in_threadpool(_confirm, _db(request), token, form, _client(request), clock.now(), act=True)
