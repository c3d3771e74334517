"""The inbox worker: classifies each inbound message, routes new and reopened conversations,
sends the automatic acknowledgement, pauses marketing on complaints, wakes snoozed
conversations and raises SLA alerts.

It works off `inbox_triage` rows written in the message's own transaction, so ingestion and
webhooks never wait for the model, and a crash between the two loses nothing: an unfinished
task's lease runs out and another round takes it. Classification runs outside any transaction
(the model may take milliseconds per message); the results are written back with the routing
decision in one transaction per batch. The acknowledgement is a send with a deterministic
idempotency key, so a task run twice acknowledges once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.consent import holds
from shopkeeper.customers.models import Customer
from shopkeeper.db.scoping import by_key
from shopkeeper.db.session import Database
from shopkeeper.errors import ShopkeeperError
from shopkeeper.inbox import conversations, live, routing, sla
from shopkeeper.inbox.hours import BusinessHours
from shopkeeper.inbox.models import Conversation, SlaPolicy, Team, TriageTask
from shopkeeper.inbox.settings import InboxSettings
from shopkeeper.messaging.models import Interaction

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 5


@dataclass
class TriageReport:
    classified: int = 0
    routed: int = 0
    acknowledged: int = 0
    woken: int = 0
    breached: int = 0
    failed: int = 0


class InboxWorker:
    def __init__(self, db: Database, *, batch: int = 50, poll_seconds: float = 0.5) -> None:
        self.db = db
        self.batch = batch
        self.poll_seconds = poll_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- background thread (inside `shopkeeper serve` and `shopkeeper worker`) ----------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="inbox-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                report = self.run_once()
                busy = report.classified >= self.batch
            except Exception:
                log.exception("inbox worker: round failed; trying again")
                busy = False
            if not busy:
                self._stopping.wait(self.poll_seconds)

    def drain(self, rounds: int = 20) -> TriageReport:
        total = TriageReport()
        for _ in range(rounds):
            report = self.run_once()
            for name in total.__dataclass_fields__:
                setattr(total, name, getattr(total, name) + getattr(report, name))
            if report.classified == 0 and report.failed == 0:
                break
        return total

    # -- one round ------------------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> TriageReport:
        now = now or clock.now()
        report = TriageReport()
        claimed = self._claim(now)
        if claimed:
            self._triage(claimed, now, report)
        with self.db.session(write=True) as session:
            report.woken = conversations.wake_snoozed(session, now)
            report.breached = sla.check(session, now)
        return report

    def _claim(self, now: datetime) -> list[tuple[str, str, str]]:
        """(task id, interaction id, text), leased to this round."""
        with self.db.session(write=True) as session:
            tasks = list(
                session.scalars(
                    select(TriageTask)
                    .where(
                        TriageTask.done_at.is_(None),
                        TriageTask.due_at <= now,
                        or_(TriageTask.lease_until.is_(None), TriageTask.lease_until < now),
                    )
                    .order_by(TriageTask.due_at)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            )
            out = []
            for task in tasks:
                task.lease_until = now + LEASE
                task.attempts += 1
                interaction = session.get(Interaction, task.interaction_id)
                out.append((task.id, task.interaction_id, conversations.preview(interaction) if interaction else ""))
            return out

    def _triage(self, claimed: list[tuple[str, str, str]], now: datetime, report: TriageReport) -> None:
        from shopkeeper.inbox.classify import classify, model_name

        try:
            results = classify([text for _, _, text in claimed])
        except Exception as exc:  # the model failing must not lose the messages
            log.exception("inbox worker: classification failed")
            with self.db.session(write=True) as session:
                for task_id, _, _ in claimed:
                    self._retry(session, task_id, now, f"classification failed: {exc}"[:500], report)
            return
        model = model_name()
        for (task_id, interaction_id, _), result in zip(claimed, results, strict=True):
            try:
                with self.db.session(write=True) as session:
                    task = session.get(TriageTask, task_id)
                    if task is None or task.done_at is not None:
                        continue
                    interaction = session.get(Interaction, interaction_id)
                    conversation = session.get(Conversation, task.conversation_id)
                    if interaction is None or conversation is None:  # erased meanwhile
                        task.done_at = now
                        continue
                    classification = {
                        "intent": result.intent,
                        "intent_confidence": round(result.intent_confidence, 4),
                        "sentiment": result.sentiment,
                        "sentiment_score": round(result.sentiment_score, 4),
                        "model": model,
                    }
                    interaction.data = {**(interaction.data or {}), "classification": classification}
                    conversation.intent = result.intent
                    conversation.intent_confidence = result.intent_confidence
                    conversation.sentiment = result.sentiment
                    conversation.sentiment_score = result.sentiment_score
                    live.record(
                        session,
                        conversation,
                        "classified",
                        "system",
                        now,
                        {"interaction_id": interaction_id, **classification},
                    )
                    report.classified += 1
                    workspace = session.get(Workspace, conversation.workspace_id)
                    settings = InboxSettings.of(workspace) if workspace is not None else InboxSettings()
                    if task.route:
                        self._route(session, conversation, interaction, settings, now, report)
                    self._pause_marketing(session, conversation, settings, now)
                    task.done_at = now
                    task.error = None
            except Exception as exc:
                log.exception("inbox worker: triage of %s failed", task_id)
                with self.db.session(write=True) as session:
                    self._retry(session, task_id, now, str(exc)[:500], report)

    def _retry(self, session: Session, task_id: str, now: datetime, error: str, report: TriageReport) -> None:
        task = session.get(TriageTask, task_id)
        if task is None:
            return
        report.failed += 1
        task.error = error
        task.lease_until = None
        if task.attempts >= MAX_ATTEMPTS:
            task.done_at = now  # given up: the conversation stays, unclassified, for an agent
        else:
            task.due_at = now + timedelta(seconds=30 * 2 ** (task.attempts - 1))

    def _route(
        self,
        session: Session,
        conversation: Conversation,
        interaction: Interaction,
        settings: InboxSettings,
        now: datetime,
        report: TriageReport,
    ) -> None:
        customer = session.get(Customer, conversation.customer_id)
        traits = dict(customer.traits or {}) if customer is not None else {}
        hours = settings.hours()
        facts = routing.facts_for(session, conversation, conversations.preview(interaction), traits, hours, now)
        decision = routing.decide(routing.rules_of(session, conversation.workspace_id), facts)
        team = None
        if decision.team:
            team = by_key(session, Team, conversation.workspace_id, decision.team)
        if team is not None:
            conversation.team_id = team.id
        if decision.assignee_id:
            conversation.assignee_id = decision.assignee_id
        elif team is not None and conversation.assignee_id is None:
            conversation.assignee_id = routing.pick_agent(session, team, now)
        if decision.priority:
            conversation.priority = decision.priority
        if decision.tags:
            conversation.tags = [
                *(conversation.tags or []),
                *[t for t in decision.tags if t not in (conversation.tags or [])],
            ]
        policy = None
        if decision.sla_policy:
            policy = by_key(session, SlaPolicy, conversation.workspace_id, decision.sla_policy)
        if policy is None:
            conversation.sla_policy_id = None
            policy = sla.policy_for(session, conversation)
        sla.start(conversation, policy, now)
        conversation.updated_at = now
        live.record(
            session,
            conversation,
            "routed",
            "system",
            now,
            {
                "rules": decision.rule_ids,
                "team_id": conversation.team_id,
                "assignee_id": conversation.assignee_id,
                "priority": conversation.priority,
                "tags": conversation.tags,
                "sla_policy_id": conversation.sla_policy_id,
                "first_response_due_at": conversation.first_response_due_at.isoformat()
                if conversation.first_response_due_at
                else None,
            },
        )
        report.routed += 1
        if self._acknowledge(session, conversation, interaction, settings, decision, hours, now):
            report.acknowledged += 1

    def _acknowledge(
        self,
        session: Session,
        conversation: Conversation,
        interaction: Interaction,
        settings: InboxSettings,
        decision: routing.Decision,
        hours: BusinessHours | None,
        now: datetime,
    ) -> bool:
        ack = settings.auto_ack
        rule_reply = decision.auto_reply
        if rule_reply is None:
            if not ack.enabled:
                return False
            if ack.channels is not None and conversation.channel not in ack.channels:
                return False
            if ack.only_outside_business_hours and hours is not None and hours.is_open(now):
                return False
        template = rule_reply.template if rule_reply is not None else ack.template
        text = (rule_reply.text if rule_reply is not None else None) or ack.text
        subject = (rule_reply.subject if rule_reply is not None else None) or ack.subject
        try:
            conversations.reply(
                session,
                conversation,
                text=text,
                template=template,
                subject=subject if conversation.channel == "email" else None,
                actor="system",
                now=now,
                idempotency_key=f"inbox-ack:{interaction.id}",
                source="system",
                event_kind="auto_reply",
            )
        except ShopkeeperError as exc:  # e.g. the channel cannot be answered on: note it, go on
            live.record(session, conversation, "auto_reply_failed", "system", now, {"reason": exc.message})
            return False
        return True

    def _pause_marketing(
        self, session: Session, conversation: Conversation, settings: InboxSettings, now: datetime
    ) -> None:
        pause = settings.pause_marketing
        reason = None
        if pause.on_complaint and conversation.intent == "complaint":
            reason = "complaint"
        rating = (conversation.data or {}).get("rating")
        if (
            pause.on_poor_review
            and conversation.source == "review"
            and isinstance(rating, int | float)
            and rating <= pause.poor_review_at_most
        ):
            reason = "poor_review"
        if reason and holds.place(
            session, conversation.workspace_id, conversation.customer_id, reason, conversation.id, now
        ):
            live.record(session, conversation, "marketing_paused", "system", now, {"reason": reason})
