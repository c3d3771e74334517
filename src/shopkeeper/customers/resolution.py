"""Identity resolution for a run of events inside one transaction.

Each event's identifiers are looked up (cache first, then one query per identifier kind for the
whole batch). No match creates a profile; several matches merge into the oldest profile, except
that two profiles holding different `user_id`s are never merged: the conflict is recorded and the
event goes to the profile that matches its own userId. New rows are written in bulk by `flush`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.merge import merge_customers
from shopkeeper.customers.models import Customer, Identity, IdentityConflict
from shopkeeper.db.bulk import insert_rows
from shopkeeper.ids import new_id

IdentKey = tuple[str, str]  # (kind, normalised value)
_LOOKUP_CHUNK = 500


def _lock_key(workspace_id: str, kind: str, value: str) -> int:
    digest = hashlib.blake2b(f"{workspace_id}\x1f{kind}\x1f{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _LOOKUP_CHUNK):
        yield items[start : start + _LOOKUP_CHUNK]


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


def apply_trait_patch(traits: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Shallow merge where a null value removes the trait."""
    merged = dict(traits)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class ResolutionUnit:
    """Resolves and links identities for one workspace within one open transaction."""

    def __init__(
        self,
        session: Session,
        workspace_id: str,
        cache: IdentityCache,
        now: datetime,
        *,
        on_merge: Callable[[str, str], None] | None = None,
    ) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.cache = cache
        self.now = now
        # Told (source, target) after each merge, so the caller can re-point rows it holds.
        self.on_merge = on_merge or (lambda source, target: None)
        self._known: dict[IdentKey, str] = {}
        self._user_id: dict[str, str | None] = {}
        self._created: dict[str, tuple[datetime, str]] = {}
        self._new_customers: dict[str, dict[str, Any]] = {}
        self._new_identities: list[dict[str, Any]] = []
        self._conflicts: list[dict[str, Any]] = []
        self._trait_patches: dict[str, dict[str, Any]] = {}
        self._profile_patches: dict[str, dict[str, Any]] = {}
        self.merges = 0
        self.customers_created = 0

    # -- lookups -------------------------------------------------------------------------
    def lock(self, keys: Iterable[IdentKey]) -> None:
        """PostgreSQL with several writers: take a transaction-scoped advisory lock per identifier
        (all at once, in one global order, so writers cannot deadlock on them). Two writers that
        meet the same new identifier then take turns instead of both creating it (measured with
        two server processes: 44 unique violations and 4 deadlocks per 60,000 events before).
        SQLite needs none of this: its writers are serialised by BEGIN IMMEDIATE."""
        if self.session.get_bind().dialect.name != "postgresql":
            return
        hashes = sorted({_lock_key(self.workspace_id, kind, value) for kind, value in keys})
        if hashes:
            self.session.execute(
                text("SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) s"),
                {"keys": hashes},
            )

    def prefetch(self, keys: Iterable[IdentKey]) -> None:
        """Load every identifier of the batch that the cache lacks, one query per kind."""
        by_kind: dict[str, set[str]] = defaultdict(set)
        for kind, value in keys:
            if (kind, value) in self._known:
                continue
            hit = self.cache.get(self.workspace_id, kind, value)
            if hit is not None:
                self._known[(kind, value)] = hit
            else:
                by_kind[kind].add(value)
        for kind, values in by_kind.items():
            for chunk in _chunks(sorted(values)):
                rows = self.session.execute(
                    select(Identity.value, Identity.customer_id).where(
                        Identity.workspace_id == self.workspace_id,
                        Identity.kind == kind,
                        Identity.value.in_(chunk),
                    )
                )
                for value, customer_id in rows:
                    self._known[(kind, value)] = customer_id
                    self.cache.put(self.workspace_id, kind, value, customer_id)

    def preload_meta(self, events: Iterable[tuple[list[IdentKey], str | None]]) -> None:
        """After `prefetch`: load, in two queries for the whole batch, the age and user id of every
        profile that an event will have to reconcile (its identifiers point at several profiles,
        or it brings a userId new to the profile it found). One query pair per such event cost
        13% of the writer's time in the ingest benchmark."""
        wanted: set[str] = set()
        for keys, user_id in events:
            owners = {owner for key in keys if (owner := self._lookup(key)) is not None}
            if len(owners) > 1 or (owners and user_id is not None and self._lookup(("user_id", user_id)) is None):
                wanted |= owners
        if wanted:
            self._load_meta(sorted(wanted))

    def knows(self, key: IdentKey) -> bool:
        return self._lookup(key) is not None

    def _lookup(self, key: IdentKey) -> str | None:
        hit = self._known.get(key)
        if hit is None:
            hit = self.cache.get(self.workspace_id, *key)
            if hit is not None:
                self._known[key] = hit
        return hit

    def _load_meta(self, customer_ids: Iterable[str]) -> None:
        ids = list(customer_ids)
        wanted = [c for c in ids if c not in self._created]
        for chunk in _chunks(wanted):
            rows = self.session.execute(
                select(Customer.id, Customer.created_at).where(
                    Customer.workspace_id == self.workspace_id, Customer.id.in_(chunk)
                )
            )
            for cid, created_at in rows:
                self._created[cid] = (created_at, cid)
        unknown_uid = [c for c in ids if c not in self._user_id]
        for c in unknown_uid:
            self._user_id[c] = None
        for chunk in _chunks(unknown_uid):
            uid_rows = self.session.execute(
                select(Identity.customer_id, Identity.value).where(
                    Identity.workspace_id == self.workspace_id,
                    Identity.kind == "user_id",
                    Identity.customer_id.in_(chunk),
                )
            )
            for cid, value in uid_rows:
                self._user_id[cid] = value

    # -- resolution ----------------------------------------------------------------------
    def resolve(
        self,
        keys: list[IdentKey],
        user_id: str | None,
        trigger: str,
        *,
        timezone: str | None = None,
        locale: str | None = None,
        seen_at: datetime | None = None,
    ) -> str:
        """The customer these identifiers belong to, creating, linking or merging as needed.

        `seen_at` (the event's time) dates a new profile, so that "the oldest profile" means the
        one first seen, also when history is imported after the fact; never later than now."""
        born = self.now if seen_at is None else min(seen_at, self.now)
        found: dict[str, list[IdentKey]] = {}
        missing: list[IdentKey] = []
        for key in keys:
            owner = self._lookup(key)
            if owner is None:
                missing.append(key)
            else:
                found.setdefault(owner, []).append(key)

        if not found:
            target = self._create(timezone, locale, born)
            self._user_id[target] = None
        elif len(found) == 1 and (user_id is None or ("user_id", user_id) in next(iter(found.values()))):
            # The common case: every known identifier already points at one profile that either
            # holds this event's userId or the event carries none.
            target = next(iter(found))
            if missing and any(k[0] == "user_id" for k in missing):
                self._load_meta([target])
        else:
            target = self._reconcile(found, user_id, trigger, timezone, locale, born)

        self._attach(target, missing, trigger)
        return target

    def _reconcile(
        self,
        found: dict[str, list[IdentKey]],
        user_id: str | None,
        trigger: str,
        timezone: str | None,
        locale: str | None,
        born: datetime,
    ) -> str:
        candidates = list(found)
        self._load_meta(candidates)
        candidates.sort(key=lambda c: self._created[c])
        wanted_uid = user_id or next((self._user_id[c] for c in candidates if self._user_id[c] is not None), None)
        compatible = [c for c in candidates if self._user_id[c] in (None, wanted_uid)]
        incompatible = [c for c in candidates if c not in compatible]
        if compatible:
            target = compatible[0]
            for other in compatible[1:]:
                self._merge(other, target, found[other], trigger)
        else:
            target = self._create(timezone, locale, born)
            self._user_id[target] = None
        for other in incompatible:
            for kind, value in found[other]:
                self._conflicts.append(
                    {
                        "id": new_id("icf"),
                        "workspace_id": self.workspace_id,
                        "customer_id": target,
                        "other_customer_id": other,
                        "kind": kind,
                        "value": value,
                        "trigger": trigger,
                        "created_at": self.now,
                    }
                )
        return target

    def _create(self, timezone: str | None, locale: str | None, born: datetime) -> str:
        cid = new_id("cus")
        self._new_customers[cid] = {
            "id": cid,
            "workspace_id": self.workspace_id,
            "traits": {},
            "timezone": timezone,
            "locale": locale,
            "created_at": born,
            "updated_at": self.now,
            "merged_into": None,
        }
        self._created[cid] = (born, cid)
        self.customers_created += 1
        return cid

    def _attach(self, customer_id: str, keys: list[IdentKey], trigger: str) -> None:
        for kind, value in keys:
            if kind == "user_id":
                held = self._user_id.get(customer_id)
                if held is not None and held != value:
                    continue  # merge protection: one profile, one user id
                self._user_id[customer_id] = value
            self._new_identities.append(
                {
                    "id": new_id("idn"),
                    "workspace_id": self.workspace_id,
                    "kind": kind,
                    "value": value,
                    "customer_id": customer_id,
                    "source": "event",
                    "source_ref": trigger,
                    "created_at": self.now,
                }
            )
            self._known[(kind, value)] = customer_id
            self.cache.put(self.workspace_id, kind, value, customer_id)

    def _merge(self, source: str, target: str, via: list[IdentKey], trigger: str) -> None:
        self.flush()  # the merge reads and moves profiles and identities, so they must be written
        described = ", ".join(f"{k}={v}" for k, v in via)
        _, moved = merge_customers(
            self.session,
            self.workspace_id,
            source,
            target,
            reason=f"linked by {described}",
            trigger=trigger,
            now=self.now,
        )
        self.merges += 1
        self.on_merge(source, target)
        # Re-point what moved rather than dropping the cache (merges are frequent enough that a
        # cold cache after each one measurably slowed ingestion), and account for our own bump
        # of the epoch so that only another process's merge empties the cache.
        for kind, value in moved:
            self.cache.put(self.workspace_id, kind, value, target)
        self.cache.note_own_bump(self.workspace_id)
        self._known = {k: (target if c == source else c) for k, c in self._known.items()}
        if self._user_id.get(target) is None:
            self._user_id[target] = self._user_id.get(source)

    # -- profile updates -----------------------------------------------------------------
    def patch_traits(self, customer_id: str, traits: dict[str, Any]) -> None:
        new = self._new_customers.get(customer_id)
        if new is not None:
            new["traits"] = apply_trait_patch(new["traits"], traits)
        else:
            pending = self._trait_patches.setdefault(customer_id, {})
            pending.update(traits)

    def patch_profile(self, customer_id: str, **fields: str | None) -> None:
        values = {k: v for k, v in fields.items() if v}
        if not values:
            return
        new = self._new_customers.get(customer_id)
        if new is not None:
            new.update(values)
        else:
            self._profile_patches.setdefault(customer_id, {}).update(values)

    # -- writing -------------------------------------------------------------------------
    def flush(self) -> None:
        """Write the profiles, identities, conflicts and trait changes gathered so far."""
        session = self.session
        if self._new_customers:
            insert_rows(session, _table(Customer), list(self._new_customers.values()))
            self._new_customers.clear()
        if self._new_identities:
            insert_rows(session, _table(Identity), self._new_identities)
            self._new_identities = []
        if self._conflicts:
            insert_rows(session, _table(IdentityConflict), self._conflicts)
            self._conflicts = []
        touched = set(self._trait_patches) | set(self._profile_patches)
        if touched:
            query = select(Customer.id, Customer.traits).where(
                Customer.workspace_id == self.workspace_id, Customer.id.in_(sorted(touched))
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update()
            current: dict[str, dict[str, Any]] = dict(session.execute(query).all())
            params = []
            for cid in sorted(touched):
                if cid not in current:
                    continue
                row: dict[str, Any] = {"b_id": cid, "b_updated_at": self.now}
                row["b_traits"] = apply_trait_patch(current[cid] or {}, self._trait_patches.get(cid, {}))
                profile = self._profile_patches.get(cid, {})
                row["b_timezone"] = profile.get("timezone")
                row["b_locale"] = profile.get("locale")
                params.append(row)
            self._update_profiles(params)
            self._trait_patches.clear()
            self._profile_patches.clear()

    def _update_profiles(self, params: list[dict[str, Any]]) -> None:
        if not params:
            return
        table: Any = Customer.__table__
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                traits=bindparam("b_traits", type_=table.c.traits.type),
                updated_at=bindparam("b_updated_at", type_=table.c.updated_at.type),
                timezone=func.coalesce(bindparam("b_timezone", type_=table.c.timezone.type), table.c.timezone),
                locale=func.coalesce(bindparam("b_locale", type_=table.c.locale.type), table.c.locale),
            )
        )
        self.session.connection().execute(stmt, params)
