"""Customers: search by any identifier or trait, and the 360° page — profile, identities with
their provenance, consent per channel and topic, segments and scores, contact pressure,
conversations, the decisions behind recent messages, and one timeline of everything."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper import clock, jsonutil
from shopkeeper.consent import service as consent
from shopkeeper.consent.models import ALL_TOPICS
from shopkeeper.consent.policy import ContactPolicy, contacts_since
from shopkeeper.consent.pressure import pressure_score
from shopkeeper.customers import search, service
from shopkeeper.customers.models import Customer, Identity
from shopkeeper.customers.timeline import TimelineItem, timeline
from shopkeeper.errors import Invalid
from shopkeeper.inbox.models import Conversation
from shopkeeper.messaging.models import Send, Template
from shopkeeper.pagination import decode_time_cursor, encode_cursor
from shopkeeper.runtime import get_runtime
from shopkeeper.segments.understanding import customer_understanding
from shopkeeper.web.render import fragment, page
from shopkeeper.web.session import Viewer, Web

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25
TIMELINE_PAGE = 30
NAME_TRAITS = ("name", "full_name")


def region_of(web: Web) -> str | None:
    """The workspace's default phone region: a national number typed in a search is read with it."""
    region = (web.workspace.settings or {}).get("default_phone_region")
    return region if isinstance(region, str) else None


def display_name(customer: Customer, identities: Sequence[Identity] = ()) -> str:
    """What a person is called on screen: their name, else an address, else their id."""
    traits = customer.traits or {}
    for key in NAME_TRAITS:
        if isinstance(traits.get(key), str) and traits[key].strip():
            return str(traits[key]).strip()
    parts = [traits.get("first_name"), traits.get("last_name")]
    joined = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    if joined:
        return joined
    for kind in ("email", "phone", "user_id"):
        for identity in identities:
            if identity.kind == kind:
                return identity.value
    return customer.id


def trait_text(value: Any) -> str:
    return value if isinstance(value, str) else jsonutil.dumps(value)


def find_customers(
    session: Session, web: Web, q: str | None, traits: Sequence[tuple[str, Any]], after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of matches (newest first) with their identities, and the id the next page starts after."""
    rows = search.search_customers(
        session,
        web.workspace_id,
        q=q,
        traits=traits,
        after_id=after,
        limit=limit + 1,
        default_region=region_of(web),
    )
    shown = rows[:limit]
    identities = service.identities_of(session, web.workspace_id, [c.id for c in shown])
    found = []
    for customer in shown:
        own = identities.get(customer.id, [])
        by_kind: dict[str, list[str]] = {}
        for identity in own:
            by_kind.setdefault(identity.kind, []).append(identity.value)
        found.append(
            {
                "id": customer.id,
                "name": display_name(customer, own),
                "identities": by_kind,
                "traits": {k: trait_text(v) for k, v in sorted((customer.traits or {}).items())[:6]},
                "created_at": customer.created_at,
            }
        )
    return found, shown[-1].id if len(rows) > limit and shown else None


@router.get("/customers")
def customers(
    request: Request,
    web: Viewer,
    q: Annotated[str, Query(max_length=512)] = "",
    trait: Annotated[list[str] | None, Query(max_length=600)] = None,
    after: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    wanted = [t for t in (trait or []) if t.strip()]
    error = None
    results: list[dict[str, Any]] = []
    next_after = None
    try:
        filters = [search.parse_trait_filter(t) for t in wanted]
    except Invalid as exc:
        error = exc.message
    else:
        with get_runtime(request).db.session() as s:
            results, next_after = find_customers(s, web, q or None, filters, after or None, PAGE_SIZE)
    query: list[tuple[str, str]] = [("q", q)] if q else []
    query += [("trait", t) for t in wanted]
    context: dict[str, Any] = {
        "q": q,
        "traits": wanted,
        "after": after,
        "results": results,
        "first_url": "/customers?" + urlencode(query),
        "next_url": "/customers?" + urlencode([*query, ("after", next_after)]) if next_after else None,
        "error": error,
        "searched": bool(q.strip() or wanted),
    }
    if request.headers.get("hx-target") == "results":
        return fragment("app/customers/_results.html", **context)
    return page(request, web, "app/customers/list.html", section="customers", status=400 if error else 200, **context)


def _consent(session: Session, ws: str, ids: list[str]) -> list[dict[str, Any]]:
    """Each topic on each of its channels: the standing status, the channel-wide one behind it,
    and where it came from."""
    rows = []
    for topic in consent.topics(session, ws):
        for channel in topic.channels:
            standing = consent.standing(session, ws, ids, channel, topic.key)
            record = standing.subscription
            rows.append(
                {
                    "topic": topic.key,
                    "topic_name": topic.name or topic.key,
                    "lawful_basis": topic.lawful_basis,
                    "channel": channel,
                    "status": standing.status,
                    "channel_wide": standing.channel_wide,
                    "source": record.source if record else None,
                    "updated_at": record.updated_at if record else None,
                }
            )
    return rows


def _pressure(session: Session, web: Web, ids: list[str]) -> dict[str, Any]:
    now = clock.now()
    caps = ContactPolicy.of(web.workspace).caps.get("all")
    return {
        "score": pressure_score(session, web.workspace_id, ids, now),
        "today": contacts_since(session, web.workspace_id, ids, now - timedelta(days=1)),
        "week": contacts_since(session, web.workspace_id, ids, now - timedelta(days=7)),
        "cap_day": caps.day if caps else None,
        "cap_week": caps.week if caps else None,
    }


def _sends(session: Session, ws: str, ids: list[str]) -> list[dict[str, Any]]:
    """The latest planned messages and what became of them (sent, delayed, skipped — and why)."""
    rows = session.execute(
        select(Send, Template.key)
        .outerjoin(Template, (Template.id == Send.template_id) & (Template.workspace_id == ws))
        .where(Send.workspace_id == ws, Send.customer_id.in_(ids))
        .order_by(Send.created_at.desc(), Send.id.desc())
        .limit(10)
    ).all()
    return [
        {
            "id": send.id,
            "created_at": send.created_at,
            "channel": send.channel,
            "kind": send.kind,
            "template": key or ("inline" if send.content else "—"),
            "source": send.source,
            "status": send.status,
            "reason": send.reason,
        }
        for send, key in rows
    ]


def _conversations(session: Session, ws: str, ids: list[str]) -> list[Conversation]:
    return list(
        session.scalars(
            select(Conversation)
            .where(Conversation.workspace_id == ws, Conversation.customer_id.in_(ids))
            .order_by(Conversation.last_message_at.desc())
            .limit(20)
        )
    )


def timeline_page(
    session: Session, ws: str, ids: list[str], before: str | None, limit: int = TIMELINE_PAGE
) -> tuple[list[TimelineItem], str | None]:
    items, more = timeline(session, ws, ids, decode_time_cursor(before) if before else None, limit)
    return items, encode_cursor(items[-1].at, items[-1].id) if more and items else None


@router.get("/customers/{customer_id}")
def customer_page(request: Request, web: Viewer, customer_id: str) -> Response:
    ws = web.workspace_id
    with get_runtime(request).db.session() as s:
        customer, ids = service.profile_ids(s, ws, customer_id)
        if customer.id != customer_id:  # merged away: the person lives on under the survivor's id
            return RedirectResponse(f"/customers/{customer.id}", status_code=303)
        identities = service.identities_of(s, ws, [customer.id])[customer.id]
        understanding = customer_understanding(s, ws, customer.id)
        preference = consent.preference_of(s, ws, customer.id)
        items, next_before = timeline_page(s, ws, ids, None)
        context: dict[str, Any] = {
            "customer": customer,
            "customer_name": display_name(customer, identities),
            "traits": [(k, trait_text(v)) for k, v in sorted((customer.traits or {}).items())],
            "identities": identities,
            "merged_ids": ids[1:],
            "stats": service.event_stats(s, ws, ids),
            "consent": _consent(s, ws, ids),
            "channel_opt_outs": [sub for sub in consent.subscriptions_of(s, ws, ids) if sub.topic == ALL_TOPICS],
            "preference": preference,
            "segments": understanding["segments"],
            "scores": understanding["scores"],
            "pressure": _pressure(s, web, ids),
            "conversations": _conversations(s, ws, ids),
            "sends": _sends(s, ws, ids),
            "items": items,
            "next_before": next_before,
            "before": None,
        }
    return page(request, web, "app/customers/show.html", section="customers", **context)


@router.get("/customers/{customer_id}/timeline")
def customer_timeline(
    request: Request,
    web: Viewer,
    customer_id: str,
    before: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    """The next page of the timeline, as list items (htmx "load more"; a page of its own without it)."""
    with get_runtime(request).db.session() as s:
        customer, ids = service.profile_ids(s, web.workspace_id, customer_id)
        items, next_before = timeline_page(s, web.workspace_id, ids, before)
        customer_name = display_name(customer, service.identities_of(s, web.workspace_id, [customer.id])[customer.id])
    context: dict[str, Any] = {"customer": customer, "items": items, "next_before": next_before, "before": before}
    if request.headers.get("hx-request") == "true":
        return fragment("app/customers/_timeline.html", **context)
    return page(
        request, web, "app/customers/timeline.html", section="customers", customer_name=customer_name, **context
    )
