"""SLA clocks: first response, next response (each customer message after an agent answered) and
resolution, counted in the policy's business hours. A conversation keeps the earliest running
due time in `next_due_at`, so the breach check is one indexed range scan, and each clock
breaches once (an alert event), however long it then stays late."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.db.scoping import scoped
from shopkeeper.inbox import live
from shopkeeper.inbox.hours import BusinessHours, add_minutes
from shopkeeper.inbox.models import Conversation, SlaPolicy

CLOCKS = ("first_response", "next_response", "resolution")
STATES = ("breached", "due_soon", "ok", "none")
DUE_SOON = timedelta(minutes=30)


def _hours(policy: SlaPolicy) -> BusinessHours | None:
    return BusinessHours.parse(policy.business_hours) if policy.business_hours else None


def policy_for(session: Session, conversation: Conversation) -> SlaPolicy | None:
    if conversation.sla_policy_id is not None:
        chosen = session.get(SlaPolicy, conversation.sla_policy_id)
        if chosen is not None:
            return chosen
    return session.scalar(scoped(SlaPolicy, conversation.workspace_id).where(SlaPolicy.is_default.is_(True)))


def _running(conversation: Conversation) -> dict[str, datetime]:
    breached = set(conversation.sla_breached or [])
    running: dict[str, datetime] = {}
    if conversation.status == "resolved":
        return running
    if conversation.first_response_at is None and conversation.first_response_due_at is not None:
        running["first_response"] = conversation.first_response_due_at
    if conversation.waiting_since is not None and conversation.next_response_due_at is not None:
        running["next_response"] = conversation.next_response_due_at
    if conversation.resolution_due_at is not None:
        running["resolution"] = conversation.resolution_due_at
    return {k: v for k, v in running.items() if k not in breached}


def recompute(conversation: Conversation) -> None:
    running = _running(conversation)
    conversation.next_due_at = min(running.values()) if running else None


def start(conversation: Conversation, policy: SlaPolicy | None, now: datetime) -> None:
    """Set the clocks of a new (or reopened) conversation under `policy`."""
    conversation.sla_policy_id = policy.id if policy is not None else None
    conversation.sla_breached = []
    conversation.first_response_due_at = conversation.resolution_due_at = conversation.next_response_due_at = None
    if policy is not None:
        hours = _hours(policy)
        began = conversation.waiting_since or now
        if policy.first_response_minutes and conversation.first_response_at is None:
            conversation.first_response_due_at = add_minutes(hours, began, policy.first_response_minutes)
        elif policy.next_response_minutes and conversation.first_response_at is not None:
            conversation.next_response_due_at = add_minutes(hours, began, policy.next_response_minutes)
        if policy.resolution_minutes:
            conversation.resolution_due_at = add_minutes(hours, began, policy.resolution_minutes)
    recompute(conversation)


def customer_wrote(session: Session, conversation: Conversation, now: datetime) -> None:
    """A new customer message on a conversation an agent has answered starts the next-response clock."""
    if conversation.first_response_at is None or conversation.next_response_due_at is not None:
        return
    policy = policy_for(session, conversation)
    if policy is not None and policy.next_response_minutes:
        conversation.next_response_due_at = add_minutes(
            _hours(policy), conversation.waiting_since or now, policy.next_response_minutes
        )
        breached = [c for c in conversation.sla_breached or [] if c != "next_response"]
        conversation.sla_breached = breached
    recompute(conversation)


def agent_answered(conversation: Conversation, now: datetime) -> None:
    if conversation.first_response_at is None:
        conversation.first_response_at = now
    conversation.next_response_due_at = None
    recompute(conversation)


def state(conversation: Conversation, now: datetime) -> str:
    if conversation.status != "resolved" and conversation.sla_breached:
        return "breached"
    if conversation.next_due_at is None:
        return "none"
    return "due_soon" if conversation.next_due_at - now <= DUE_SOON else "ok"


def check(session: Session, now: datetime, limit: int = 500) -> int:
    """Raise an alert for each clock that ran out; returns how many breached."""
    rows = session.scalars(
        select(Conversation)
        .where(Conversation.status != "resolved", Conversation.next_due_at <= now)
        .order_by(Conversation.next_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    count = 0
    for conversation in rows:
        running = _running(conversation)
        late = sorted(clock for clock, due in running.items() if due <= now)
        if not late:
            recompute(conversation)
            continue
        conversation.sla_breached = [*(conversation.sla_breached or []), *late]
        conversation.updated_at = now
        for clock in late:
            live.record(
                session,
                conversation,
                "sla_breached",
                "system",
                now,
                {
                    "clock": clock,
                    "due_at": running[clock].isoformat(),
                    "assignee_id": conversation.assignee_id,
                    "team_id": conversation.team_id,
                    "priority": conversation.priority,
                },
            )
            count += 1
        recompute(conversation)
    return count
