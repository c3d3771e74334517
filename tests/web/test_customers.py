"""SPEC §1 C1 and §9 in the web UI: customers found by any identifier or trait, and the 360° page
— profile, identities with provenance, consent per channel and topic, segments and scores,
contact pressure, conversations, and one timeline of events, messages both ways, consent changes,
merges and notes, loaded page by page."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.consent.service import Proof, set_preference, set_status
from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from shopkeeper.ids import new_id
from shopkeeper.inbox.conversations import attach_inbound, note
from shopkeeper.messaging.inbound import receive
from shopkeeper.messaging.models import Interaction
from shopkeeper.segments.models import CustomerScore
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_topic
from tests.helpers import ingest, message
from tests.web.helpers import login, make_user


def customer_of(db: Database, workspace_id: str, kind: str, value: str) -> str:
    with db.session() as s:
        found = s.scalar(
            select(Identity.customer_id).where(
                Identity.workspace_id == workspace_id, Identity.kind == kind, Identity.value == value
            )
        )
    assert found is not None
    return found


def seed_ann(db: Database, workspace_id: str, frozen_clock: FrozenClock) -> str:
    """Ann: identified with traits, browsing as an anonymous visitor first (merged into her
    profile), an order, an SMS from her and an email to her, an opt-in, a note, a score."""
    ingest(db, workspace_id, [message("page", anonymousId="anon-ann", name="Spring sale")])
    frozen_clock.advance(timedelta(minutes=1))
    ingest(
        db,
        workspace_id,
        [
            message(
                "identify",
                userId="ann",
                traits={
                    "email": "ann@example.com",
                    "phone": "+447911123456",
                    "first_name": "Ann",
                    "last_name": "Archer",
                    "plan": "pro",
                    "timezone": "Europe/London",
                    "locale": "en-GB",
                },
            )
        ],
    )
    frozen_clock.advance(timedelta(minutes=1))
    # Signing in on the device she browsed with: the visitor's profile merges into hers.
    ingest(
        db,
        workspace_id,
        [message("track", userId="ann", anonymousId="anon-ann", event="Order Completed", properties={"total": 42.5})],
    )
    ann = customer_of(db, workspace_id, "user_id", "ann")
    make_topic(db, workspace_id, "offers", channels=("email", "sms"))
    now = frozen_clock.advance(timedelta(minutes=1))
    with db.session(write=True) as s:
        set_status(s, workspace_id, ann, "email", "offers", "opted_in", Proof(source="api", wording="Yes please"), now)
        set_preference(
            s,
            workspace_id,
            ann,
            preferred_channel="email",
            frequency="weekly",
            quiet_start=None,
            quiet_end=None,
            now=now,
        )
    now = frozen_clock.advance(timedelta(minutes=1))
    with db.session(write=True) as s:
        inbound = receive(
            s,
            workspace_id,
            channel="sms",
            kind="phone",
            address="+447911123456",
            text="Where is my parcel?",
            now=now,
            notify=False,
        )
        assert inbound is not None and inbound.customer_id == ann
        conversation = attach_inbound(s, inbound)
        assert conversation is not None
        note(s, conversation, "Called the courier: arrives Friday.", "user:agent-1", now + timedelta(seconds=30))
        s.add(
            Interaction(
                id=new_id("int"),
                workspace_id=workspace_id,
                customer_id=ann,
                channel="email",
                direction="out",
                status="delivered",
                subject="Your order has shipped",
                text="It is on its way.",
                data={},
                created_at=now + timedelta(minutes=1),
            )
        )
        s.add(
            CustomerScore(
                workspace_id=workspace_id,
                customer_id=ann,
                name="churn_risk",
                value=0.12,
                label="low",
                computed_at=now,
            )
        )
    return ann


def test_search_by_any_identifier_or_trait(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    make_user(db, workspace.id, role="viewer", email="viewer@example.com")
    ann = seed_ann(db, workspace.id, frozen_clock)
    ingest(db, workspace.id, [message("identify", userId="bob", traits={"email": "bob@example.org", "plan": "basic"})])
    login(app_client, "viewer@example.com")

    everyone = app_client.get("/customers")
    assert everyone.status_code == 200 and "Newest customers" in everyone.text
    assert "Ann Archer" in everyone.text and "bob@example.org" in everyone.text

    for query in ({"q": "ANN@example.com"}, {"q": "+44 7911 123456"}, {"q": "ann@ex"}, {"trait": "plan:pro"}):
        found = app_client.get("/customers", params=query)
        assert found.status_code == 200
        assert f'href="/customers/{ann}"' in found.text, query
        assert "bob@example.org" not in found.text, query
    assert "No customer matches" in app_client.get("/customers", params={"q": "nobody-here"}).text

    # As the user types, htmx asks for the results only.
    partial = app_client.get("/customers", params={"q": "bob"}, headers={"HX-Request": "true", "HX-Target": "results"})
    assert partial.status_code == 200 and "<html" not in partial.text and "bob@example.org" in partial.text

    bad = app_client.get("/customers", params={"trait": "no-colon-here"})
    assert bad.status_code == 400
    assert "must look like name:value" in bad.text and 'aria-invalid="true"' in bad.text


def test_results_come_a_page_at_a_time(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    make_user(db, workspace.id)
    ingest(
        db,
        workspace.id,
        [message("identify", userId=f"user-{i:02d}", traits={"email": f"p{i:02d}@example.com"}) for i in range(30)],
    )
    login(app_client)
    first = app_client.get("/customers", params={"q": "user-"})
    assert first.text.count('href="/customers/cus') == 25
    link = re.search(r'href="(/customers\?[^"]*after=[^"]+)" rel="next"', first.text)
    assert link is not None
    second = app_client.get(link.group(1).replace("&amp;", "&"))
    assert second.text.count('href="/customers/cus') == 5
    assert 'rel="next"' not in second.text and "First page" in second.text
    shown = set(re.findall(r'href="/customers/(cus[^"]+)"', first.text + second.text))
    assert len(shown) == 30


def test_the_360_page_shows_the_whole_customer(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    make_user(db, workspace.id)
    ann = seed_ann(db, workspace.id, frozen_clock)
    login(app_client)
    r = app_client.get(f"/customers/{ann}")
    assert r.status_code == 200, r.text
    html = r.text
    assert "<h1>Ann Archer</h1>" in html
    # Profile, time zone and locale; identities with where each came from.
    assert "Europe/London" in html and "en-GB" in html and ">plan</th>" in html
    assert "ann@example.com" in html and "+447911123456" in html and "anon-ann" in html
    assert ">event <" in html or ">event" in html  # provenance: linked by an event
    # Consent per topic and channel, preferences, contact pressure.
    consent = html[html.index('id="consent-h"') :]
    assert 'badge opted_in">opted in' in consent and 'badge unknown">unknown' in consent
    assert "Prefers email, frequency weekly" in html
    assert 'data-testid="pressure"' in html
    # Scores, conversations.
    assert "churn risk" in html and "low" in html
    assert "Conversation on sms" in html
    # One timeline: events, messages in both directions, consent changes, notes, the merge.
    timeline = html[html.index('id="timeline"') :]
    for entry in (
        "Order Completed",
        "Viewed page Spring sale",
        "Where is my parcel?",
        "Your order has shipped",
        "opted in for offers on email",
        "Called the courier: arrives Friday.",
        "Merged ",
    ):
        assert entry in timeline, entry
    assert (
        timeline.index("Your order has shipped")
        < timeline.index("Where is my parcel?")
        < timeline.index("Order Completed")
    )  # newest first


def test_a_merged_away_id_opens_the_survivor(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    make_user(db, workspace.id)
    ingest(db, workspace.id, [message("page", anonymousId="visitor-9", name="Home")])
    ingest(db, workspace.id, [message("identify", userId="zoe", traits={"name": "Zoe"})])
    ingest(db, workspace.id, [message("track", userId="zoe", anonymousId="visitor-9", event="Signed In")])
    zoe = customer_of(db, workspace.id, "user_id", "zoe")
    with db.session() as s:
        gone = s.scalars(select(Customer).where(Customer.workspace_id == workspace.id, Customer.merged_into == zoe))
        visitor = [c.id for c in gone]
    assert len(visitor) == 1
    login(app_client)
    r = app_client.get(f"/customers/{visitor[0]}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{zoe}"
    assert "<h1>Zoe</h1>" in app_client.get(f"/customers/{visitor[0]}").text


def test_the_timeline_loads_more_on_request(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    make_user(db, workspace.id)
    events = []
    for i in range(45):
        frozen_clock.advance(timedelta(minutes=1))
        events.append(message("track", userId="kim", event=f"Step {i:02d}", timestamp=clock.now().isoformat()))
    ingest(db, workspace.id, events)
    kim = customer_of(db, workspace.id, "user_id", "kim")
    login(app_client)
    page = app_client.get(f"/customers/{kim}").text
    assert page.count('data-testid="timeline-item"') == 30
    assert "Step 44" in page and "Step 15" in page and "Step 14" not in page
    more = re.search(r'hx-get="(/customers/[^"]+/timeline\?before=[^"]+)"', page)
    assert more is not None
    rest = app_client.get(more.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert rest.status_code == 200 and "<html" not in rest.text
    assert rest.text.count('data-testid="timeline-item"') == 15
    assert "Step 14" in rest.text and "Step 00" in rest.text and "Load more" not in rest.text
    # Without JavaScript the same link is a page of its own.
    plain = app_client.get(more.group(1).replace("&amp;", "&"))
    assert plain.status_code == 200 and "<h1>kim: earlier timeline</h1>" in plain.text


def test_another_workspaces_customer_is_not_found(
    app_client: httpx.Client, db: Database, make_workspace: object, frozen_clock: FrozenClock
) -> None:
    a = make_workspace("A")  # type: ignore[operator]
    b = make_workspace("B")  # type: ignore[operator]
    make_user(db, a.id)
    theirs = seed_ann(db, b.id, frozen_clock)
    login(app_client)
    for path in (f"/customers/{theirs}", f"/customers/{theirs}/timeline"):
        r = app_client.get(path)
        assert r.status_code == 404 and "Not found" in r.text
        assert "Ann" not in r.text
    listing = app_client.get("/customers", params={"q": "ann@example.com"})
    assert listing.status_code == 200 and theirs not in listing.text and "No customer matches" in listing.text
    by_id = app_client.get("/customers", params={"q": theirs})
    assert f'href="/customers/{theirs}"' not in by_id.text and "No customer matches" in by_id.text


def test_customer_pages_need_a_login(app_client: httpx.Client) -> None:
    r = app_client.get("/customers/cus_x", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/customers/cus_x")
