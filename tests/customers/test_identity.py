"""SPEC §3: identity resolution — normalised identities, merges into the oldest profile, merge
protection for different user ids, merge history, and reversible merges (unmerge)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.merge import unmerge
from shopkeeper.customers.models import Customer, Identity, IdentityConflict, Merge
from shopkeeper.customers.timeline import timeline
from shopkeeper.db.session import Database
from shopkeeper.errors import Conflict
from shopkeeper.events.models import Event
from tests.conftest import WorkspaceKeys
from tests.helpers import ingest, message


def owner(db: Database, ws: str, kind: str, value: str) -> str | None:
    with db.session() as s:
        return s.scalar(
            select(Identity.customer_id).where(
                Identity.workspace_id == ws, Identity.kind == kind, Identity.value == value
            )
        )


def customer(db: Database, customer_id: str) -> Customer:
    with db.session() as s:
        found = s.get(Customer, customer_id)
        assert found is not None
        return found


def events_of(db: Database, customer_id: str) -> list[Event]:
    with db.session() as s:
        return list(s.scalars(select(Event).where(Event.customer_id == customer_id).order_by(Event.timestamp)))


def live_customers(db: Database, ws: str) -> list[Customer]:
    with db.session() as s:
        return list(s.scalars(select(Customer).where(Customer.workspace_id == ws, Customer.merged_into.is_(None))))


def test_anonymous_visitor_who_identifies_is_one_customer_with_the_whole_history(
    db: Database, workspace: WorkspaceKeys
) -> None:
    ingest(
        db,
        workspace.id,
        [
            message("page", anonymousId="anon-1", name="Home"),
            message("track", anonymousId="anon-1", event="Product Viewed"),
        ],
    )
    ingest(db, workspace.id, [message("identify", anonymousId="anon-1", userId="u-1", traits={"email": "a@x.io"})])
    ingest(db, workspace.id, [message("track", userId="u-1", event="Order Completed")])

    cid = owner(db, workspace.id, "anonymous_id", "anon-1")
    assert cid is not None
    assert owner(db, workspace.id, "user_id", "u-1") == cid
    assert owner(db, workspace.id, "email", "a@x.io") == cid
    assert [e.type for e in events_of(db, cid)] == ["page", "track", "identify", "track"]
    assert len(live_customers(db, workspace.id)) == 1


def test_identifiers_are_normalised(db: Database, workspace: WorkspaceKeys) -> None:
    with db.session(write=True) as s:
        from shopkeeper.auth.models import Workspace

        ws = s.get(Workspace, workspace.id)
        assert ws is not None
        ws.settings = {"default_phone_region": "GB"}
    ingest(
        db,
        workspace.id,
        [message("identify", userId="u-1", traits={"email": "  Alice.Smith@Example.COM ", "phone": "020 7946 0958"})],
    )
    cid = owner(db, workspace.id, "user_id", "u-1")
    assert owner(db, workspace.id, "email", "alice.smith@example.com") == cid
    assert owner(db, workspace.id, "phone", "+442079460958") == cid
    # The same person written differently is found, not duplicated.
    ingest(
        db,
        workspace.id,
        [
            message(
                "identify",
                anonymousId="other-device",
                traits={"email": "ALICE.SMITH@example.com", "phone": "+44 20 7946 0958"},
            )
        ],
    )
    assert owner(db, workspace.id, "anonymous_id", "other-device") == cid


def test_invalid_email_and_phone_are_kept_as_traits_but_not_linked(db: Database, workspace: WorkspaceKeys) -> None:
    ingest(db, workspace.id, [message("identify", userId="u-1", traits={"email": "not-an-email", "phone": "12"})])
    cid = owner(db, workspace.id, "user_id", "u-1")
    assert cid is not None
    assert customer(db, cid).traits == {"email": "not-an-email", "phone": "12"}
    with db.session() as s:
        kinds = set(s.scalars(select(Identity.kind).where(Identity.customer_id == cid)))
    assert kinds == {"user_id"}


def test_two_profiles_that_meet_merge_into_the_oldest(
    db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    ingest(db, workspace.id, [message("identify", userId="u-1", traits={"name": "Old", "plan": "pro"})])
    older = owner(db, workspace.id, "user_id", "u-1")
    frozen_clock.advance(timedelta(days=1))
    ingest(
        db,
        workspace.id,
        [
            message("track", anonymousId="laptop", event="Product Viewed"),
            message("identify", anonymousId="laptop", traits={"name": "New"}),
        ],
    )
    newer = owner(db, workspace.id, "anonymous_id", "laptop")
    assert older and newer and older != newer
    frozen_clock.advance(timedelta(days=1))

    ingest(db, workspace.id, [message("identify", userId="u-1", anonymousId="laptop")])

    assert owner(db, workspace.id, "anonymous_id", "laptop") == older
    assert customer(db, newer).merged_into == older
    survivor = customer(db, older)
    assert survivor.merged_into is None
    # Both trait sets survive; on a clash the most recently updated profile wins.
    assert survivor.traits == {"name": "New", "plan": "pro"}
    assert {e.name for e in events_of(db, older) if e.type == "track"} == {"Product Viewed"}
    assert events_of(db, newer) == []
    with db.session() as s:
        merge = s.scalars(select(Merge)).one()
        items, _ = timeline(s, workspace.id, [older], None, 50)
    assert (merge.source_customer_id, merge.target_customer_id) == (newer, older)
    assert "anonymous_id=laptop" in merge.reason
    assert any(i.kind == "merge" and i.id == merge.id for i in items)


def test_shared_email_merges_an_anonymous_profile(
    db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    ingest(db, workspace.id, [message("identify", userId="u-7", traits={"email": "bob@example.org"})])
    frozen_clock.advance(timedelta(minutes=5))
    ingest(db, workspace.id, [message("page", anonymousId="phone-app")])
    frozen_clock.advance(timedelta(minutes=5))
    ingest(db, workspace.id, [message("identify", anonymousId="phone-app", traits={"email": "Bob@Example.org"})])
    assert owner(db, workspace.id, "anonymous_id", "phone-app") == owner(db, workspace.id, "user_id", "u-7")
    assert len(live_customers(db, workspace.id)) == 1


def test_profiles_with_different_user_ids_are_never_merged(db: Database, workspace: WorkspaceKeys) -> None:
    ingest(
        db,
        workspace.id,
        [message("identify", userId="u-1", anonymousId="shared-tablet", traits={"email": "one@example.com"})],
    )
    first = owner(db, workspace.id, "user_id", "u-1")
    # Someone else logs in on the same tablet and claims the same email.
    ingest(
        db,
        workspace.id,
        [
            message("identify", userId="u-2", anonymousId="shared-tablet", traits={"email": "one@example.com"}),
            message("track", userId="u-2", anonymousId="shared-tablet", event="Order Completed"),
        ],
    )
    second = owner(db, workspace.id, "user_id", "u-2")
    assert first and second and first != second
    assert customer(db, first).merged_into is None and customer(db, second).merged_into is None
    # The identifiers stay where they were; the event goes to the profile of its own userId.
    assert owner(db, workspace.id, "anonymous_id", "shared-tablet") == first
    assert owner(db, workspace.id, "email", "one@example.com") == first
    assert [e.name for e in events_of(db, second) if e.type == "track"] == ["Order Completed"]
    with db.session() as s:
        conflicts = list(s.scalars(select(IdentityConflict)))
        items, _ = timeline(s, workspace.id, [second], None, 50)
    assert {(c.customer_id, c.other_customer_id) for c in conflicts} == {(second, first)}
    assert {(c.kind, c.value) for c in conflicts} == {("anonymous_id", "shared-tablet"), ("email", "one@example.com")}
    assert any(i.kind == "identity_conflict" for i in items)


def test_merge_protection_holds_when_an_identifier_links_two_identified_profiles(
    db: Database, workspace: WorkspaceKeys
) -> None:
    ingest(db, workspace.id, [message("identify", userId="u-1", traits={"email": "a@example.com"})])
    ingest(db, workspace.id, [message("identify", userId="u-2", traits={"email": "b@example.com"})])
    # An anonymous event carrying both emails cannot glue two user ids together.
    ingest(
        db,
        workspace.id,
        [
            message("identify", anonymousId="x", traits={"email": "a@example.com"}),
            message("identify", anonymousId="x", traits={"email": "b@example.com"}),
        ],
    )
    u1, u2 = owner(db, workspace.id, "user_id", "u-1"), owner(db, workspace.id, "user_id", "u-2")
    assert u1 != u2
    assert customer(db, u1).merged_into is None and customer(db, u2).merged_into is None  # type: ignore[arg-type]


def test_alias_links_a_previous_anonymous_id(db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock) -> None:
    ingest(db, workspace.id, [message("track", anonymousId="old-anon", event="Product Viewed")])
    frozen_clock.advance(timedelta(seconds=1))
    ingest(db, workspace.id, [message("identify", userId="u-9")])
    frozen_clock.advance(timedelta(seconds=1))
    ingest(db, workspace.id, [message("alias", previousId="old-anon", userId="u-9")])
    anon_owner = owner(db, workspace.id, "anonymous_id", "old-anon")
    assert anon_owner == owner(db, workspace.id, "user_id", "u-9")
    assert len(live_customers(db, workspace.id)) == 1


def test_unmerge_splits_profiles_and_gives_events_back_by_identifier(
    db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    ingest(db, workspace.id, [message("identify", userId="u-1", traits={"name": "Ann"})])
    older = owner(db, workspace.id, "user_id", "u-1")
    frozen_clock.advance(timedelta(hours=1))
    ingest(
        db,
        workspace.id,
        [
            message("track", anonymousId="kiosk", event="Product Viewed"),
            message("identify", anonymousId="kiosk", traits={"email": "kiosk@example.com", "name": "K"}),
        ],
    )
    newer = owner(db, workspace.id, "anonymous_id", "kiosk")
    frozen_clock.advance(timedelta(hours=1))
    ingest(db, workspace.id, [message("track", userId="u-1", anonymousId="kiosk", event="Order Completed")])
    assert customer(db, newer).merged_into == older  # type: ignore[arg-type]

    with db.session(write=True) as s:
        merge_id = s.scalars(select(Merge.id)).one()
        record = unmerge(s, workspace.id, merge_id, actor="key:test", now=clock.now())
    assert record.undone_by == "key:test"

    assert customer(db, newer).merged_into is None  # type: ignore[arg-type]
    assert owner(db, workspace.id, "anonymous_id", "kiosk") == newer
    assert owner(db, workspace.id, "email", "kiosk@example.com") == newer
    assert owner(db, workspace.id, "user_id", "u-1") == older
    assert customer(db, newer).traits == {"email": "kiosk@example.com", "name": "K"}  # type: ignore[arg-type]
    # Anonymous kiosk events go back; the event carrying u-1 stays with u-1's profile.
    assert [e.name for e in events_of(db, newer) if e.type == "track"] == ["Product Viewed"]  # type: ignore[arg-type]
    assert [e.name for e in events_of(db, older) if e.type == "track"] == ["Order Completed"]  # type: ignore[arg-type]

    with db.session(write=True) as s, pytest.raises(Conflict):
        unmerge(s, workspace.id, merge_id, actor="key:test", now=clock.now())
    with db.session() as s:
        items, _ = timeline(s, workspace.id, [older], None, 50)
    assert [i.kind for i in items if i.kind in ("merge", "unmerge")] == ["unmerge", "merge"]


def test_a_retried_message_id_is_stored_once(db: Database, workspace: WorkspaceKeys) -> None:
    payload = message("track", userId="u-1", event="Order Completed", properties={"total": 10})
    first = ingest(db, workspace.id, [payload, dict(payload)])
    second = ingest(db, workspace.id, [dict(payload)])
    assert (first.stored, first.duplicates) == (1, 1)
    assert (second.stored, second.duplicates) == (0, 1)
    with db.session() as s:
        assert len(list(s.scalars(select(Event.id)))) == 1


def test_cache_from_another_process_is_dropped_after_a_merge(
    db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    """Two writers with separate caches (two processes): a merge by one must not leave the
    other attributing events to the merged-away profile."""
    cache_a, cache_b = IdentityCache(1000), IdentityCache(1000)
    ingest(db, workspace.id, [message("identify", userId="u-1")], cache=cache_a)
    frozen_clock.advance(timedelta(seconds=1))
    ingest(db, workspace.id, [message("page", anonymousId="tab")], cache=cache_b)  # b caches tab → new profile
    frozen_clock.advance(timedelta(seconds=1))
    ingest(db, workspace.id, [message("identify", userId="u-1", anonymousId="tab")], cache=cache_a)  # a merges
    ingest(db, workspace.id, [message("track", anonymousId="tab", event="After Merge")], cache=cache_b)
    survivor = owner(db, workspace.id, "user_id", "u-1")
    assert [e.name for e in events_of(db, survivor) if e.type == "track"] == ["After Merge"]  # type: ignore[arg-type]


def test_oldest_means_first_seen_also_for_history_imported_late(db: Database, workspace: WorkspaceKeys) -> None:
    # Imported in this order, but the anonymous visitor was seen a year before the account existed.
    ingest(db, workspace.id, [message("identify", userId="u-late", timestamp="2026-02-01T00:00:00Z")])
    ingest(db, workspace.id, [message("page", anonymousId="early-bird", timestamp="2025-02-01T00:00:00Z")])
    account = owner(db, workspace.id, "user_id", "u-late")
    visitor = owner(db, workspace.id, "anonymous_id", "early-bird")
    ingest(db, workspace.id, [message("identify", userId="u-late", anonymousId="early-bird")])
    assert customer(db, account).merged_into == visitor  # type: ignore[arg-type]
    assert customer(db, visitor).created_at.year == 2025  # type: ignore[arg-type]
