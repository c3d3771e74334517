"""The delivery pipeline: a worker takes due sends from the outbox and carries each through
consent gate → suppression → caps and quiet hours → render → provider → status history.

Three short transactions per batch, so that a crash at any point neither loses a send nor sends
one twice:

1. **claim**: due rows move to stage `claimed` under this worker's lease (`FOR UPDATE SKIP
   LOCKED` on PostgreSQL, so any number of workers share the outbox; SQLite has one writer).
2. **prepare**: per send, `reserve_contact` (the consent gate, suppression, caps and quiet hours,
   and the contact recorded against the caps under the customer's lock), then render, then the
   interaction row. Deny → `suppressed`/`skipped` with the reason; delay → back to `waiting`
   until the time the policy gave.
3. **hand-off**, one message at a time: the provider calls `commit_point` just before the far
   side can have the message, which commits stage `handing_off`; then **finish** records the
   result (`sent`, cost, provider id) for the batch.

Recovery (each round): an expired `claimed` lease goes back to `waiting` (nothing left the
building); an expired `handing_off` is recorded `sent` with the reason "unconfirmed" and never
sent again, unless the provider drops repeats of our idempotency key, in which case it is safe to
try again. Temporary provider errors fail over to the next provider of the channel, then retry
with exponential backoff and full jitter; permanent ones fail the send.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.channels.base import OutboundMessage, ProviderError, ProviderResult
from shopkeeper.consent.addresses import ADDRESS_KINDS, SUPPRESSIBLE_CHANNELS
from shopkeeper.consent.models import Contact
from shopkeeper.consent.policy import reserve_contact
from shopkeeper.consent.service import suppress, suppressions_for
from shopkeeper.consent.tokens import unsubscribe_headers
from shopkeeper.customers.models import Customer
from shopkeeper.db.session import Database
from shopkeeper.errors import ShopkeeperError
from shopkeeper.ids import new_id
from shopkeeper.messaging import channel_hooks
from shopkeeper.messaging.context import render_context
from shopkeeper.messaging.models import Interaction, Send
from shopkeeper.messaging.providers import ProviderPool, Route
from shopkeeper.messaging.status import history, record
from shopkeeper.messaging.template_service import compiled_cache
from shopkeeper.messaging.templates import TemplateError, compile_content
from shopkeeper.messaging.tracking import add_tracking

log = logging.getLogger(__name__)
_HANDING_OFF = text(
    "UPDATE sends SET stage = CASE WHEN stage = 'handing_off' THEN 'handing_off' ELSE :stage END,"
    " provider = :provider"
    " WHERE id = :id AND lease_owner = :holder AND stage IN ('claimed', 'handing_off', 'handing_off_dedup')"
)


class LeaseLost(Exception):
    """Another worker took the send over (this one was too slow): leave it to them."""


@dataclass
class Prepared:
    send_id: str
    message: OutboundMessage
    routes: list[Route]


@dataclass
class Outcome:
    send_id: str
    route: Route | None = None
    result: ProviderResult | None = None
    errors: list[str] = field(default_factory=list)
    permanent: bool = False
    unconfirmed: bool = False
    suppress: str | None = None  # a permanent refusal that names the address as unusable
    code: str | None = None  # the permanent refusal's ProviderError.code (channel_hooks.failed)


@dataclass
class RoundReport:
    claimed: int = 0
    sent: int = 0
    delayed: int = 0
    refused: int = 0
    retried: int = 0
    failed: int = 0
    recovered: int = 0


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        *,
        holder: str | None = None,
        batch: int = 100,
        lease: timedelta = timedelta(minutes=5),
        max_attempts: int = 6,
        backoff: timedelta = timedelta(seconds=30),
        backoff_cap: timedelta = timedelta(hours=2),
        base_url: str | None = None,
        poll_seconds: float = 1.0,
        track: bool = True,
    ) -> None:
        self.db = db
        self.holder = holder or f"worker-{uuid.uuid4().hex[:10]}"
        self.batch = batch
        self.lease = lease
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.base_url = base_url
        self.poll_seconds = poll_seconds
        self.track = track
        self.pool = ProviderPool()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()
        self._routes_memo: dict[tuple[str, str], list[Route]] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def wake(self) -> None:
        """New work is due now (the API calls this after queueing a send)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.pool.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.run_once().claimed > 0
            except Exception:
                log.exception("delivery: a round failed; trying again shortly")
                busy = False
            if not busy:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def drain(self, *, rounds: int = 1000) -> RoundReport:
        """Run rounds until nothing is due (tests, `shopkeeper worker --once`)."""
        total = RoundReport()
        for _ in range(rounds):
            report = self.run_once()
            for name in vars(total):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            if report.claimed == 0:
                break
        return total

    # -- one round ---------------------------------------------------------------------------
    def run_once(self) -> RoundReport:
        report = RoundReport()
        now = clock.now()
        report.recovered = self.recover(now)
        ids = self.claim(now)
        report.claimed = len(ids)
        if not ids:
            return report
        prepared = self.prepare(ids, now, report)
        outcomes: list[Outcome] = []
        for item in prepared:
            try:
                outcomes.append(self.hand_off(item))
            except LeaseLost:
                log.warning("delivery: lost the lease on %s; another worker has it", item.send_id)
        if outcomes:
            self.finish(outcomes, clock.now(), report)
        return report

    def recover(self, now: datetime) -> int:
        with self.db.session(write=True) as session:
            expired = Send.lease_until < now
            requeued = session.execute(
                update(Send)
                .where(Send.stage.in_(("claimed", "handing_off_dedup")), expired)
                .values(stage="waiting", lease_owner=None, lease_until=None)
            ).rowcount  # type: ignore[attr-defined]
            lost = list(session.scalars(select(Send).where(Send.stage == "handing_off", expired)))
            for send in lost:
                send.stage, send.lease_owner, send.lease_until = "done", None, None
                send.sent_at = send.sent_at or now
                record(
                    session,
                    send,
                    "sent",
                    now,
                    "unconfirmed: the worker stopped while handing the message over; not sent again",
                    provider=send.provider,
                )
        return int(requeued or 0) + len(lost)

    def claim(self, now: datetime) -> list[str]:
        with self.db.session(write=True) as session:
            query = (
                select(Send.id)
                .where(Send.stage == "waiting", Send.next_attempt_at <= now)
                .order_by(Send.next_attempt_at)
                .limit(self.batch)
            )
            if self.db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if ids:
                session.execute(
                    update(Send)
                    .where(Send.id.in_(ids))
                    .values(stage="claimed", lease_owner=self.holder, lease_until=now + self.lease)
                )
            return ids

    def prepare(self, ids: Sequence[str], now: datetime, report: RoundReport) -> list[Prepared]:
        prepared: list[Prepared] = []
        self._routes_memo = {}
        with self.db.session(write=True) as session:
            # In customer order: workers lock customers in the same order, so never deadlock.
            sends = session.scalars(
                select(Send)
                .where(Send.id.in_(ids), Send.lease_owner == self.holder)
                .order_by(Send.customer_id, Send.id)
            ).all()
            workspaces: dict[str, Workspace] = {}
            for send in sends:
                workspace = workspaces.get(send.workspace_id) or session.get(Workspace, send.workspace_id)
                assert workspace is not None
                workspaces[workspace.id] = workspace
                try:
                    with session.begin_nested():
                        item = self._prepare_one(session, workspace, send, now, report)
                except ShopkeeperError as exc:
                    self._fail(session, send, now, f"{exc.code}: {exc.message}")
                    report.failed += 1
                    continue
                if item is not None:
                    prepared.append(item)
        return prepared

    def _prepare_one(
        self, session: Session, workspace: Workspace, send: Send, now: datetime, report: RoundReport
    ) -> Prepared | None:
        if send.expires_at is not None and send.expires_at <= now:
            self._close(session, send, "skipped", now, "expired: not sent before its expiry time")
            report.refused += 1
            return None
        extra = channel_hooks.prepare(session, send)  # e.g. a webhook's endpoint URL and secret
        if send.contact_id is not None:  # a retry or a recovered claim: release the old reservation
            session.execute(delete(Contact).where(Contact.id == send.contact_id))
            send.contact_id = None
        decision = reserve_contact(
            session,
            send.workspace_id,
            send.customer_id,
            send.channel,
            send.topic,
            send.kind,
            now,
            expires_at=send.expires_at,
            ref=send.id,
        )
        why = decision.explanation[-1] if decision.explanation else decision.reason
        if decision.outcome == "delay":
            assert decision.until is not None
            send.stage, send.lease_owner, send.lease_until = "waiting", None, None
            send.next_attempt_at = decision.until
            send.updated_at = now
            history(
                session, send, "queued", now, f"delayed ({decision.reason}): {why}", until=decision.until.isoformat()
            )
            report.delayed += 1
            return None
        if decision.outcome == "deny":
            status = "suppressed" if decision.reason == "suppressed" else "skipped"
            self._close(session, send, status, now, f"{decision.reason}: {why}")
            report.refused += 1
            return None
        send.contact_id = decision.contact_id

        ids = decision.profile_ids
        customer = session.get(Customer, ids[0])  # loaded by the gate: no second query
        assert customer is not None
        address = self._address(session, send, decision.usable_addresses)
        if address is None and ADDRESS_KINDS.get(send.channel):
            self._close(session, send, "skipped", now, "no_address: every address on this channel is suppressed")
            report.refused += 1
            return None
        try:
            compiled = (
                compiled_cache.get(session, send.workspace_id, send.template_id, send.template_version or 1)
                if send.template_id is not None
                else compile_content(send.content or {})
            )
            context = render_context(
                session,
                workspace,
                customer,
                ids,
                channel=send.channel,
                topic=send.topic,
                data=send.data or {},
                now=now,
                base_url=self.base_url,
            )
            content = compiled.render(send.channel, context)
        except TemplateError as exc:
            self._fail(session, send, now, f"template_error: {exc.message}")
            report.failed += 1
            return None

        headers: dict[str, str] = {}
        if send.channel == "email":
            if send.kind == "marketing":
                headers.update(
                    unsubscribe_headers(workspace, customer.id, now, topic=send.topic, base_url=self.base_url)
                )
            if self.track and content.get("html"):
                from shopkeeper.config import get_settings

                content["html"] = add_tracking(
                    content["html"],
                    base_url=self.base_url or get_settings().public_url,
                    workspace_id=workspace.id,
                    secret=workspace.signing_secret,
                    send_id=send.id,
                )
        interaction = self._interaction(session, send, customer.id, address, content, now)
        send.to_address = address
        send.interaction_id = interaction.id
        send.updated_at = now
        message = OutboundMessage(
            send_id=send.id,
            workspace_id=send.workspace_id,
            customer_id=customer.id,
            channel=send.channel,
            kind=send.kind,
            to=address or "",
            content=content,
            idempotency_key=f"{send.workspace_id}:{send.idempotency_key}",
            headers=headers,
            metadata={
                "interaction_id": interaction.id,
                "topic": send.topic,
                "in_reply_to": send.data.get("in_reply_to"),
                **extra,
            },
        )
        key = (send.workspace_id, send.channel)
        if key not in self._routes_memo:  # once per batch, not once per send
            self._routes_memo[key] = self.pool.routes(session, send.workspace_id, send.channel)
        return Prepared(send.id, message, self._routes_memo[key])

    def _address(self, session: Session, send: Send, usable: list[str]) -> str | None:
        """The address the send names (if it is not suppressed), else the customer's first
        usable one as the gate found them."""
        given = (send.data or {}).get("to")
        if not (isinstance(given, str) and given):
            if send.channel not in SUPPRESSIBLE_CHANNELS and usable:
                return usable[-1]  # chat: the most recent session or user id
            return usable[0] if usable else None
        if send.channel in SUPPRESSIBLE_CHANNELS and suppressions_for(
            session, send.workspace_id, send.channel, [given]
        ):
            return None
        return given

    def _interaction(
        self,
        session: Session,
        send: Send,
        customer_id: str,
        address: str | None,
        content: dict[str, str],
        now: datetime,
    ) -> Interaction:
        interaction = session.get(Interaction, send.interaction_id) if send.interaction_id else None
        if interaction is None:
            interaction = Interaction(
                id=new_id("int"),
                workspace_id=send.workspace_id,
                customer_id=customer_id,
                channel=send.channel,
                direction="out",
                send_id=send.id,
                created_at=now,
            )
            session.add(interaction)
        interaction.conversation_id = (send.data or {}).get("conversation_id")
        interaction.status = "queued"
        interaction.address = address
        interaction.subject = content.get("subject") or content.get("title")
        interaction.text = content.get("text") or content.get("body") or content.get("script")
        interaction.html = content.get("html")
        interaction.data = {k: v for k, v in content.items() if k not in ("subject", "text", "html")}
        return interaction

    # -- hand-off --------------------------------------------------------------------------
    def hand_off(self, item: Prepared) -> Outcome:
        outcome = Outcome(item.send_id)
        for route in item.routes:
            if route.bucket is not None:
                route.bucket.take()
            item.message.commit_point = self._commit_point(item.send_id, route)
            try:
                outcome.result = route.provider.send(item.message)
                outcome.route = route
                return outcome
            except LeaseLost:
                raise
            except ProviderError as exc:
                outcome.errors.append(f"{route.name}: {exc}")
                if exc.code == "unconfirmed":
                    outcome.route, outcome.unconfirmed = route, True
                    return outcome
                if not exc.temporary:
                    outcome.route, outcome.permanent, outcome.suppress = route, True, exc.suppress
                    outcome.code = exc.code
                    return outcome
            except Exception as exc:  # a provider bug is treated as a temporary failure
                log.exception("delivery: provider %s failed", route.name)
                outcome.errors.append(f"{route.name}: {type(exc).__name__}: {exc}")
        return outcome

    def _commit_point(self, send_id: str, route: Route) -> Callable[[], None]:
        stage = "handing_off_dedup" if route.provider.dedupes else "handing_off"

        def commit() -> None:
            # A plain statement on a connection: this runs once per message, between the body
            # and the final dot, so it is kept to one round trip and no ORM work. A failover
            # after a provider that may already have had the message (a 500 after the request)
            # keeps `handing_off`: failing over never makes a repeat safe again.
            with self.db.write_engine.begin() as conn:
                moved = conn.execute(
                    _HANDING_OFF, {"stage": stage, "provider": route.name, "id": send_id, "holder": self.holder}
                ).rowcount
            if not moved:
                raise LeaseLost(send_id)

        return commit

    # -- finish ------------------------------------------------------------------------------
    def finish(self, outcomes: Sequence[Outcome], now: datetime, report: RoundReport) -> None:
        with self.db.session(write=True) as session:
            query = select(Send).where(Send.id.in_([o.send_id for o in outcomes])).order_by(Send.id)
            if self.db.dialect == "postgresql":
                # A delivery report may be recording "delivered" right now: lock, so that this
                # "sent" is checked against it instead of overwriting it (SQLite: one writer).
                query = query.with_for_update()
            loaded = {s.id: s for s in session.scalars(query.execution_options(populate_existing=True))}
            for outcome in outcomes:
                send = loaded.get(outcome.send_id)
                if send is None or send.lease_owner != self.holder:
                    continue
                if outcome.result is not None and outcome.route is not None:
                    self._sent(session, send, outcome.route, outcome.result, now)
                    report.sent += 1
                elif outcome.unconfirmed:
                    send.provider = outcome.route.name if outcome.route else send.provider
                    self._close(session, send, "sent", now, f"unconfirmed: {'; '.join(outcome.errors)}")
                    send.sent_at = now
                    report.sent += 1
                elif outcome.permanent:
                    self._fail(session, send, now, "; ".join(outcome.errors))
                    channel_hooks.failed(session, send, outcome.code)
                    if outcome.suppress:
                        self._suppress(session, send, outcome.suppress, now, outcome.errors[-1])
                    report.failed += 1
                else:
                    self._retry(session, send, now, "; ".join(outcome.errors) or "no provider took it", report)

    def _sent(self, session: Session, send: Send, route: Route, result: ProviderResult, now: datetime) -> None:
        send.stage, send.lease_owner, send.lease_until = "done", None, None
        send.provider = route.name
        send.provider_message_id = result.provider_message_id
        send.units = result.units
        if result.cost is not None:
            send.cost, send.currency = result.cost, result.currency or route.currency
        elif route.cost_per_unit is not None:
            send.cost, send.currency = round(route.cost_per_unit * result.units, 6), route.currency
        send.sent_at = now
        send.attempts += 1
        delivered = {
            "provider": route.name,
            "provider_message_id": result.provider_message_id,
            "message_id": result.data.get("message_id"),
            "cost": send.cost,
        }
        if result.status != "sent":
            record(session, send, "sent", now, None, provider=route.name, units=result.units, cost=send.cost)
            record(session, send, result.status, now, None, interaction=delivered, provider=route.name)
        else:
            record(
                session,
                send,
                "sent",
                now,
                None,
                interaction=delivered,
                provider=route.name,
                units=result.units,
                cost=send.cost,
            )

    def _retry(self, session: Session, send: Send, now: datetime, why: str, report: RoundReport) -> None:
        send.attempts += 1
        self._release(session, send)
        if send.attempts >= self.max_attempts:
            self._fail(session, send, now, f"gave up after {send.attempts} attempts: {why}")
            report.failed += 1
            return
        ceiling = min(self.backoff_cap, self.backoff * (2 ** (send.attempts - 1)))
        delay = timedelta(seconds=self._random.uniform(0.5, 1.0) * ceiling.total_seconds())
        if send.expires_at is not None and now + delay > send.expires_at:
            self._close(session, send, "skipped", now, f"expired: no provider took it before its expiry ({why})")
            report.refused += 1
            return
        send.stage, send.lease_owner, send.lease_until = "waiting", None, None
        send.next_attempt_at = now + delay
        send.updated_at = now
        history(session, send, "queued", now, f"retry {send.attempts} in {delay.total_seconds():.0f} s: {why}")
        report.retried += 1

    def _suppress(self, session: Session, send: Send, reason: str, now: datetime, why: str) -> None:
        """The provider said the address itself is unusable (e.g. the number replied STOP to the
        carrier): suppress it, so no later send tries it again."""
        if not send.to_address or send.channel not in SUPPRESSIBLE_CHANNELS:
            return
        try:
            with session.begin_nested():
                suppress(session, send.workspace_id, send.channel, send.to_address, reason, now, note=why[:500])
        except ShopkeeperError as exc:
            log.warning("delivery: could not suppress the address of %s: %s", send.id, exc.message)

    def _release(self, session: Session, send: Send) -> None:
        if send.contact_id is not None:
            session.execute(delete(Contact).where(Contact.id == send.contact_id))
            send.contact_id = None

    def _fail(self, session: Session, send: Send, now: datetime, why: str) -> None:
        self._release(session, send)
        self._close(session, send, "failed", now, why)

    def _close(self, session: Session, send: Send, status: str, now: datetime, why: str) -> None:
        send.stage, send.lease_owner, send.lease_until = "done", None, None
        record(session, send, status, now, why[:500])
