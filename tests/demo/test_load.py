"""The demo written through the real ingest path, on SQLite and PostgreSQL: every event stored
once, identities resolved (anonymous history lands on the signed-in customer), re-runs idempotent."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from shopkeeper.demo.generator import DemoShop
from shopkeeper.demo.load import DemoWorkspace, LoadStats, check_same_demo, open_workspace, write_shop
from shopkeeper.errors import Conflict
from shopkeeper.events.models import Event
from tests.demo.conftest import build

CUSTOMERS, EVENTS = 200, 4_000


@dataclass
class Loaded:
    shop: DemoShop
    payloads: list[dict[str, Any]]
    workspace: DemoWorkspace
    stats: LoadStats


@pytest.fixture(scope="module")
def small_shop() -> DemoShop:
    return build(customers=CUSTOMERS, events=EVENTS)


@pytest.fixture
def loaded(db: Database, small_shop: DemoShop) -> Loaded:
    workspace = open_workspace(db, "Demo Shop", datetime.now(UTC))
    stats = write_shop(db, workspace.id, small_shop, chunk_size=700)
    return Loaded(small_shop, list(small_shop.payloads()), workspace, stats)


def event_count(db: Database, workspace_id: str, *types: str) -> int:
    query = select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id)
    if types:
        query = query.where(Event.type.in_(types))
    with db.session() as s:
        return int(s.scalar(query) or 0)


def owner_of(db: Database, workspace_id: str, kind: str, value: str) -> str | None:
    with db.session() as s:
        return s.scalar(
            select(Identity.customer_id).where(
                Identity.workspace_id == workspace_id, Identity.kind == kind, Identity.value == value
            )
        )


def test_every_generated_event_is_stored_once(db: Database, loaded: Loaded) -> None:
    ws = loaded.workspace.id
    assert loaded.workspace.created and loaded.workspace.write_key and loaded.workspace.secret_key
    assert loaded.stats.stored == loaded.stats.generated == len(loaded.payloads) == loaded.shop.event_count
    assert event_count(db, ws) == len(loaded.payloads)
    assert event_count(db, ws, "page", "track") == EVENTS
    with db.session() as s:
        stored_ids = set(s.scalars(select(Event.message_id).where(Event.workspace_id == ws)))
    assert stored_ids == {p["messageId"] for p in loaded.payloads}


def test_running_it_again_stores_nothing_new(db: Database, loaded: Loaded) -> None:
    ws = loaded.workspace.id
    with db.session() as s:
        customers_before = s.scalar(select(func.count()).select_from(Customer).where(Customer.workspace_id == ws))
    again = open_workspace(db, "Demo Shop", datetime.now(UTC))
    assert again.id == ws and not again.created and again.write_key is None
    check_same_demo(db, ws, loaded.shop)  # the same demo: resuming is allowed
    stats = write_shop(db, ws, loaded.shop)
    assert (stats.stored, stats.duplicates) == (0, len(loaded.payloads))
    assert event_count(db, ws) == len(loaded.payloads)
    with db.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(Customer).where(Customer.workspace_id == ws)) == customers_before
        )


def test_another_demo_is_not_mixed_into_the_workspace(db: Database, loaded: Loaded) -> None:
    with pytest.raises(Conflict):
        check_same_demo(db, loaded.workspace.id, build(customers=CUSTOMERS, events=EVENTS, seed=7))


def test_each_named_customer_is_one_profile_with_user_id_email_and_phone(db: Database, loaded: Loaded) -> None:
    ws = loaded.workspace.id
    for person in loaded.shop.people:
        customer_id = owner_of(db, ws, "user_id", person.user_id)
        assert customer_id is not None
        assert owner_of(db, ws, "email", person.email) == customer_id
        if person.phone:
            assert owner_of(db, ws, "phone", person.phone) == customer_id
        with db.session() as s:
            customer = s.get(Customer, customer_id)
            assert customer is not None and customer.merged_into is None
            assert (customer.timezone, customer.locale) == (person.timezone, person.locale)
            assert customer.traits["email"] == person.email
            assert customer.traits["name"] == person.name


def test_anonymous_history_belongs_to_the_customer_after_sign_in(db: Database, loaded: Loaded) -> None:
    ws = loaded.workspace.id
    signed_in_with: dict[str, str] = {}
    anonymous_before: dict[str, list[str]] = defaultdict(list)
    for payload in loaded.payloads:
        cookie = payload.get("anonymousId")
        if payload["type"] == "identify" and cookie:
            signed_in_with.setdefault(cookie, payload["userId"])
        elif cookie and "userId" not in payload and cookie not in signed_in_with:
            anonymous_before[cookie].append(payload["messageId"])
    linked = {cookie: ids for cookie, ids in anonymous_before.items() if cookie in signed_in_with}
    assert len(linked) >= 5
    for cookie, message_ids in linked.items():
        customer_id = owner_of(db, ws, "user_id", signed_in_with[cookie])
        assert customer_id is not None
        assert owner_of(db, ws, "anonymous_id", cookie) == customer_id
        with db.session() as s:
            owners = set(
                s.scalars(select(Event.customer_id).where(Event.workspace_id == ws, Event.message_id.in_(message_ids)))
            )
        assert owners == {customer_id}, "events from before the sign-in are attributed to the customer"


def test_visitors_who_never_sign_in_stay_anonymous_profiles(db: Database, loaded: Loaded) -> None:
    ws = loaded.workspace.id
    signed_in = {p["anonymousId"] for p in loaded.payloads if p["type"] == "identify" and "anonymousId" in p}
    strangers = {
        p["anonymousId"] for p in loaded.payloads if p.get("anonymousId") and p["anonymousId"] not in signed_in
    }
    assert strangers
    for cookie in strangers:
        customer_id = owner_of(db, ws, "anonymous_id", cookie)
        assert customer_id is not None
        with db.session() as s:
            kinds = set(
                s.scalars(select(Identity.kind).where(Identity.workspace_id == ws, Identity.customer_id == customer_id))
            )
        assert kinds == {"anonymous_id"}


def test_history_is_stored_as_received_when_it_happened(db: Database, loaded: Loaded) -> None:
    ws = loaded.workspace.id
    with db.session() as s:
        rows = s.execute(select(Event.timestamp, Event.received_at).where(Event.workspace_id == ws)).all()
    assert all(timestamp == received_at for timestamp, received_at in rows)
    end = loaded.shop.window.end
    assert all(end - timedelta(days=366) < timestamp < end for timestamp, _ in rows)


def test_profiles_are_created_on_the_day_of_their_first_event(db: Database, loaded: Loaded) -> None:
    ws = loaded.workspace.id
    with db.session() as s:
        first = dict(
            s.execute(
                select(Event.customer_id, func.min(Event.timestamp))
                .where(Event.workspace_id == ws)
                .group_by(Event.customer_id)
            ).all()
        )
        created = dict(
            s.execute(
                select(Customer.id, Customer.created_at).where(
                    Customer.workspace_id == ws, Customer.merged_into.is_(None)
                )
            ).all()
        )
    assert set(first) == set(created)
    for customer_id, created_at in created.items():
        first_seen = first[customer_id]
        if first_seen.tzinfo is None:  # min() over SQLite text loses the column type
            first_seen = datetime.fromisoformat(str(first_seen)).replace(tzinfo=UTC)
        assert first_seen <= created_at < first_seen + timedelta(days=1), customer_id
