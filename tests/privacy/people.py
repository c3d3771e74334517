"""Builders for privacy tests: Zelda, who left a trace in every table, and Bob, who must be left alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.consent import service as consent
from shopkeeper.consent.policy import reserve_contact
from shopkeeper.consent.service import Proof
from shopkeeper.customers.models import Identity
from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.helpers import ingest, message

ZELDA = {
    "user_id": "zelda-42",
    "anonymous_id": "anon-zelda-7",
    "email": "zelda.quux@example.com",
    "work_email": "zelda.work@example.org",
    "phone": "+14155550199",
    "device_token": "zelda-device-token-0001",
    "name": "Zelda Quux",
}
BOB = {"user_id": "bob-1", "anonymous_id": "anon-bob", "email": "bob@example.net", "name": "Bob Stone"}


def bearer(ws: WorkspaceKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.secret_key}"}


def customer_of(db: Database, workspace_id: str, kind: str, value: str) -> str | None:
    with db.session() as s:
        return s.scalar(
            select(Identity.customer_id).where(
                Identity.workspace_id == workspace_id, Identity.kind == kind, Identity.value == value
            )
        )


@dataclass
class Person:
    customer_id: str
    merged_id: str
    events: int
    needles: list[str] = field(default_factory=list)


def make_bob(db: Database, ws: WorkspaceKeys) -> str:
    ingest(
        db,
        ws.id,
        [
            message(
                "identify",
                userId=BOB["user_id"],
                anonymousId=BOB["anonymous_id"],
                traits={"email": BOB["email"], "name": BOB["name"]},
            ),
            message("track", userId=BOB["user_id"], event="Order Completed", properties={"total": 12}),
        ],
    )
    bob = customer_of(db, ws.id, "user_id", BOB["user_id"])
    assert bob is not None
    with db.session(write=True) as s:
        consent.set_status(s, ws.id, bob, "email", "offers", "opted_in", Proof(source="api"), clock.now())
        consent.suppress(s, ws.id, "email", BOB["email"], "hard_bounce", clock.now(), note="Bob's mailbox is full")
    return bob


def segment_traces(app_client: httpx.Client, db: Database, ws: WorkspaceKeys) -> int:
    """Between Zelda's sign-up and the merge of her anonymous visit into it: she buys and answers
    an NPS survey, the anonymous visitor answers a CSAT survey; segments "visitors" (performed
    Home) and "buyers" are built and every score computed. The anonymous profile is then merged
    away with its membership row still open and its CSAT score still stored (both stay until the
    next refresh or score run), so erasure has rows of a merged profile to find. Returns the
    number of events this adds to Zelda's history (two "Segment Entered" among them)."""
    ingest(
        db,
        ws.id,
        [
            message("track", userId=ZELDA["user_id"], event="Order Completed", properties={"total": 40}),
            message(
                "track", userId=ZELDA["user_id"], event="Survey Answered", properties={"survey": "nps", "score": 9}
            ),
            message(
                "track",
                anonymousId=ZELDA["anonymous_id"],
                event="Survey Answered",
                properties={"survey": "csat", "score": 4},
            ),
        ],
    )
    auth = bearer(ws)
    for key, name in (("visitors", "Home"), ("buyers", "Order Completed")):
        r = app_client.post(
            "/api/v1/segments", headers=auth, json={"key": key, "conditions": {"event": {"name": name}}}
        )
        assert r.status_code == 201, r.text
        r = app_client.post(f"/api/v1/segments/{r.json()['id']}/refresh", headers=auth)
        assert r.status_code == 200, r.text
    r = app_client.post("/api/v1/scores/refresh", headers=auth)
    assert r.status_code == 200, r.text
    return 5


def make_zelda(
    app_client: httpx.Client,
    db: Database,
    ws: WorkspaceKeys,
    frozen_clock: FrozenClock,
    before_merge: Callable[[httpx.Client, Database, WorkspaceKeys], int] | None = None,
) -> Person:
    """Zelda: an anonymous visit, a sign-up (a merge), an event that meets Bob's anonymous id (an
    identity conflict), consent given and withdrawn, preferences, a contact, a STOP suppression,
    an agent's trait edit and a linked work address (audit entries). `before_merge` runs between
    the sign-up and the merge and returns how many events it added to her history."""
    step = timedelta(minutes=1)
    added = 0
    ingest(db, ws.id, [message("page", anonymousId=ZELDA["anonymous_id"], name="Home", context={"ip": "203.0.113.9"})])
    frozen_clock.advance(step)
    ingest(
        db,
        ws.id,
        [
            message(
                "identify",
                userId=ZELDA["user_id"],
                traits={"email": ZELDA["email"], "phone": ZELDA["phone"], "name": ZELDA["name"], "health": "asthma"},
                context={"device": {"token": ZELDA["device_token"]}, "userAgent": "ZeldaBrowser/1.0"},
            )
        ],
    )
    frozen_clock.advance(step)
    if before_merge is not None:
        added = before_merge(app_client, db, ws)
        frozen_clock.advance(step)
    ingest(db, ws.id, [message("identify", userId=ZELDA["user_id"], anonymousId=ZELDA["anonymous_id"])])
    frozen_clock.advance(step)
    ingest(
        db, ws.id, [message("track", userId=ZELDA["user_id"], anonymousId=BOB["anonymous_id"], event="Shared Tablet")]
    )
    for i in range(3):
        frozen_clock.advance(step)
        ingest(db, ws.id, [message("track", userId=ZELDA["user_id"], event="Viewed Inhaler", properties={"n": i})])
    survivor = customer_of(db, ws.id, "user_id", ZELDA["user_id"])
    assert survivor is not None
    auth = bearer(ws)
    view = app_client.get(f"/api/v1/customers/{survivor}", headers=auth).json()
    assert view["merged_ids"] and view["conflicts"], view
    merged_id = view["merged_ids"][0]

    now = clock.now()
    with db.session(write=True) as s:
        proof = Proof(
            source="preference-centre",
            wording="Yes, Zelda, send me offers",
            ip="203.0.113.9",
            user_agent="ZeldaBrowser/1.0",
        )
        consent.set_status(s, ws.id, survivor, "email", "offers", "opted_in", proof, now)
        consent.set_status(s, ws.id, survivor, "sms", "*", "opted_out", Proof(source="inbound-keyword"), now)
        consent.set_preference(
            s,
            ws.id,
            survivor,
            preferred_channel="email",
            frequency="weekly",
            quiet_start="22:00",
            quiet_end="07:00",
            now=now,
        )
        decision = reserve_contact(s, ws.id, survivor, "email", None, "transactional", now, ref="receipt-zelda")
        assert decision.allowed, decision
    r = app_client.post(
        "/api/v1/suppressions",
        headers=auth,
        json={"channel": "sms", "address": ZELDA["phone"], "reason": "stop", "note": "Zelda Quux texted STOP"},
    )
    assert r.status_code == 201, r.text
    r = app_client.patch(f"/api/v1/customers/{survivor}", headers=auth, json={"traits": {"nickname": "Zed"}})
    assert r.status_code == 200, r.text
    r = app_client.post(
        f"/api/v1/customers/{survivor}/identities", headers=auth, json={"kind": "email", "value": ZELDA["work_email"]}
    )
    assert r.status_code == 201, r.text
    return Person(
        customer_id=survivor,
        merged_id=merged_id,
        events=7 + added,
        needles=[*ZELDA.values(), "zelda", "asthma", "203.0.113.9", "4155550199"],
    )
