"""In the browser: log in, find a customer and read their timeline."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.consent.service import Proof, create_topic, set_status
from shopkeeper.customers.models import Identity
from shopkeeper.ids import new_id
from shopkeeper.messaging.inbound import receive
from shopkeeper.messaging.models import Interaction
from shopkeeper.segments.models import CustomerScore
from tests.e2e.conftest import Shop, shoot
from tests.helpers import ingest, message


def seed_nina(shop: Shop) -> str:
    """Nina: identified, browsing and ordering, opting in to the newsletter, mailed and then
    writing to the shop — through ingest and the services, as the real ones arrive."""
    start = clock.now() - timedelta(hours=3)
    stamp = lambda minutes: (start + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    ingest(
        shop.db,
        shop.workspace_id,
        [
            message(
                "identify",
                userId="nina",
                traits={"email": "nina@example.com", "first_name": "Nina", "last_name": "Novak", "plan": "pro"},
                timestamp=stamp(0),
            ),
            message("page", userId="nina", name="Garden chairs", timestamp=stamp(5)),
            message("track", userId="nina", event="Order Completed", properties={"total": 89.9}, timestamp=stamp(9)),
        ],
    )
    for n in range(3):  # others in the list
        ingest(shop.db, shop.workspace_id, [message("identify", userId=f"other-{n}", traits={"plan": "basic"})])
    with shop.db.session() as s:
        nina = s.scalar(
            select(Identity.customer_id).where(
                Identity.workspace_id == shop.workspace_id, Identity.kind == "user_id", Identity.value == "nina"
            )
        )
    assert nina is not None
    with shop.db.session(write=True) as s:
        create_topic(
            s,
            shop.workspace_id,
            key="newsletter",
            name="Newsletter",
            purpose="news from the shop",
            lawful_basis="consent",
            channels=("email", "sms"),
            double_opt_in=False,
            now=start,
        )
        set_status(
            s,
            shop.workspace_id,
            nina,
            "email",
            "newsletter",
            "opted_in",
            Proof(source="api", wording="Send me the newsletter"),
            start + timedelta(minutes=10),
        )
        s.add(
            Interaction(
                id=new_id("int"),
                workspace_id=shop.workspace_id,
                customer_id=nina,
                channel="email",
                direction="out",
                status="opened",
                subject="Your garden chairs are on their way",
                text="Thanks for your order!",
                data={},
                created_at=start + timedelta(minutes=12),
            )
        )
        s.add(
            CustomerScore(
                workspace_id=shop.workspace_id,
                customer_id=nina,
                name="rfm",
                value=455,
                label="loyal",
                computed_at=start,
            )
        )
        receive(
            s,
            shop.workspace_id,
            channel="chat",
            kind="user_id",
            address="nina",
            text="Do the garden chairs come assembled?",
            now=clock.now() - timedelta(minutes=30),
            customer_id=nina,
            notify=False,
        )
    return nina


def test_log_in_find_a_customer_and_read_the_timeline(page: object, shop: Shop) -> None:
    nina = seed_nina(shop)
    tab = page
    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()  # type: ignore[attr-defined]
    tab.get_by_role("heading", name="Customers").wait_for()  # type: ignore[attr-defined]
    shoot(tab, "customers")

    tab.get_by_label("Identifier").fill("nina@exa")  # type: ignore[attr-defined]  # results follow the typing
    results = tab.locator("#results tbody tr")  # type: ignore[attr-defined]
    results.first.get_by_role("link", name="Nina Novak").wait_for()
    assert results.count() == 1
    assert "q=nina%40exa" in tab.url  # type: ignore[attr-defined]  # the search is in the address

    results.first.get_by_role("link", name="Nina Novak").click()
    tab.wait_for_url(f"**/customers/{nina}")  # type: ignore[attr-defined]
    assert tab.get_by_role("heading", name="Nina Novak", level=1).is_visible()  # type: ignore[attr-defined]
    timeline = tab.locator("#timeline [data-testid=timeline-item]")  # type: ignore[attr-defined]
    texts = timeline.all_inner_texts()
    assert len(texts) == 6
    assert "Do the garden chairs come assembled?" in texts[0] and "chat received" in texts[0]
    assert "Your garden chairs are on their way" in texts[1] and "email sent" in texts[1]
    assert "opted in for newsletter on email" in texts[2]
    assert "Order Completed" in texts[3]
    assert "Viewed page Garden chairs" in texts[4]
    assert "Identified" in texts[5]
    assert tab.get_by_role("heading", name="Identities").is_visible()  # type: ignore[attr-defined]
    assert tab.get_by_role("cell", name="nina@example.com").first.is_visible()  # type: ignore[attr-defined]
    shoot(tab, "customer-360")
