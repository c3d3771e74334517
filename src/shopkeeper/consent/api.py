"""Admin API for consent: topics, subscriptions and their log, preferences, policy, decisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.auth.service import audit
from shopkeeper.consent import service, timeline  # noqa: F401 - timeline registers its source
from shopkeeper.consent.policy import ContactPolicy, can_contact, contacts_since
from shopkeeper.consent.pressure import pressure_score
from shopkeeper.consent.schemas import (
    ConsentEventOut,
    ConsentSummary,
    DecisionIn,
    DecisionOut,
    PolicyOut,
    PreferenceIn,
    PreferenceOut,
    StatusChanges,
    SubscriptionOut,
    TopicIn,
    TopicOut,
    TopicPatch,
)
from shopkeeper.customers.sections import register_section
from shopkeeper.customers.service import profile_ids
from shopkeeper.db.scoping import get_scoped
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.errors import Invalid, NotFound

router = APIRouter(prefix="/api/v1", tags=["consent"])


@router.get("/topics", summary="Subscription topics")
def list_topics(runtime: RuntimeDep, caller: Caller, include_archived: bool = False) -> list[TopicOut]:
    with runtime.db.session() as session:
        return [
            TopicOut.model_validate(t)
            for t in service.topics(session, caller.workspace_id, include_archived=include_archived)
        ]


@router.post("/topics", status_code=201, summary="Create a topic")
def create_topic(runtime: RuntimeDep, caller: Caller, body: TopicIn) -> TopicOut:
    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        topic = service.create_topic(session, caller.workspace_id, now=now, **body.model_dump())
        audit(
            session,
            caller,
            "topic.create",
            subject_type="topic",
            subject_id=topic.id,
            details=body.model_dump(),
            now=now,
        )
        return TopicOut.model_validate(topic)


@router.patch("/topics/{topic_id}", summary="Change or archive a topic (its key and lawful basis are fixed)")
def patch_topic(runtime: RuntimeDep, caller: Caller, topic_id: str, body: TopicPatch) -> TopicOut:
    from shopkeeper.consent.models import Topic

    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        topic = get_scoped(session, Topic, caller.workspace_id, topic_id, "topic")
        changes = body.model_dump(exclude_unset=True)
        for name in ("name", "description", "purpose", "double_opt_in"):
            if changes.get(name) is not None:
                setattr(topic, name, changes[name])
        if body.channels is not None:
            topic.channels = sorted(set(body.channels))
        if body.archived is not None:
            topic.archived_at = now if body.archived else None
        audit(session, caller, "topic.update", subject_type="topic", subject_id=topic.id, details=changes, now=now)
        session.flush()
        return TopicOut.model_validate(topic)


def _summary(session: Session, workspace_id: str, ids: list[str]) -> ConsentSummary:
    now = clock.now()
    preference = service.preference_of(session, workspace_id, ids[0])
    return ConsentSummary(
        subscriptions=[SubscriptionOut.model_validate(s) for s in service.subscriptions_of(session, workspace_id, ids)],
        preference=PreferenceOut(
            preferred_channel=preference.preferred_channel if preference else None,
            frequency=preference.frequency if preference else "any",
            quiet_start=preference.quiet_start if preference else None,
            quiet_end=preference.quiet_end if preference else None,
            updated_at=preference.updated_at if preference else None,
        ),
        contact_pressure=pressure_score(session, workspace_id, ids, now),
        contacts_last_7_days=contacts_since(session, workspace_id, ids, now - timedelta(days=7)),
    )


def _section(session: Session, workspace_id: str, ids: Sequence[str]) -> dict[str, Any]:
    """The 360° view's consent section: statuses, preferences and contact pressure."""
    return _summary(session, workspace_id, list(ids)).model_dump(mode="json")


register_section("consent", _section)


@router.get("/customers/{customer_id}/consent", summary="Statuses, preferences and contact pressure")
def get_consent(runtime: RuntimeDep, caller: Caller, customer_id: str) -> ConsentSummary:
    with runtime.db.session() as session:
        _, ids = profile_ids(session, caller.workspace_id, customer_id)
        return _summary(session, caller.workspace_id, ids)


@router.post("/customers/{customer_id}/subscriptions", summary="Change statuses (all or none)")
def change_subscriptions(runtime: RuntimeDep, caller: Caller, customer_id: str, body: StatusChanges) -> ConsentSummary:
    """Each change appends a consent event with its source, the wording shown and the caller.
    Opting in to a double-opt-in email topic goes to `pending` (use the public confirmation flow)."""
    caller.require("agent")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        customer, ids = profile_ids(session, caller.workspace_id, customer_id)
        for index, change in enumerate(body.changes):
            try:
                status = change.status
                if status == "opted_in" and change.channel == "email" and change.topic != "*":
                    topic = service.topic_by_key(session, caller.workspace_id, change.topic)
                    if topic.double_opt_in:
                        status = "pending"
                proof = service.Proof(
                    source=change.source,
                    wording=change.wording,
                    ip=change.ip,
                    user_agent=change.user_agent,
                    actor=caller.actor,
                )
                event = service.set_status(
                    session, caller.workspace_id, customer.id, change.channel, change.topic, status, proof, now
                )
            except (Invalid, NotFound) as exc:
                field = f"changes[{index}].{exc.field}" if exc.field else f"changes[{index}]"
                raise Invalid(f"{field}: {exc.message}", field=field) from None
            if event is not None:
                audit(
                    session,
                    caller,
                    "consent.change",
                    subject_type="subscription",
                    subject_id=event.id,
                    customer_id=customer.id,
                    details={
                        "channel": change.channel,
                        "topic": change.topic,
                        "status": status,
                        "previous": event.previous_status,
                    },
                    now=now,
                )
        return _summary(session, caller.workspace_id, ids)


@router.get("/customers/{customer_id}/consent-events", summary="The consent log, newest first")
def list_consent_events(runtime: RuntimeDep, caller: Caller, customer_id: str) -> list[ConsentEventOut]:
    with runtime.db.session() as session:
        _, ids = profile_ids(session, caller.workspace_id, customer_id)
        return [ConsentEventOut.model_validate(e) for e in service.consent_events_of(session, caller.workspace_id, ids)]


@router.put("/customers/{customer_id}/preferences", summary="Preferred channel, pace and quiet hours")
def put_preferences(runtime: RuntimeDep, caller: Caller, customer_id: str, body: PreferenceIn) -> ConsentSummary:
    caller.require("agent")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        customer, ids = profile_ids(session, caller.workspace_id, customer_id)
        service.set_preference(session, caller.workspace_id, customer.id, now=now, **body.model_dump())
        audit(
            session,
            caller,
            "preference.update",
            subject_type="customer",
            subject_id=customer.id,
            customer_id=customer.id,
            details=body.model_dump(),
            now=now,
        )
        return _summary(session, caller.workspace_id, ids)


@router.post("/customers/{customer_id}/can-contact", summary="Would a message be sent now, and why (records nothing)")
def explain(runtime: RuntimeDep, caller: Caller, customer_id: str, body: DecisionIn) -> DecisionOut:
    with runtime.db.session() as session:
        customer, _ = profile_ids(session, caller.workspace_id, customer_id)
        decision = can_contact(
            session,
            caller.workspace_id,
            customer.id,
            body.channel,
            body.topic,
            body.kind,
            body.at or clock.now(),
            expires_at=body.expires_at,
        )
    return DecisionOut(
        outcome=decision.outcome,
        reason=decision.reason,
        until=decision.until,
        explanation=decision.explanation,
        evidence=decision.evidence,
    )


def _workspace(session: Session, workspace_id: str) -> Workspace:
    ws = session.get(Workspace, workspace_id)
    if ws is None:
        raise NotFound("workspace not found")
    return ws


@router.get("/contact-policy", summary="Frequency caps and quiet hours of this workspace")
def get_policy(runtime: RuntimeDep, caller: Caller) -> PolicyOut:
    with runtime.db.session() as session:
        return PolicyOut(policy=ContactPolicy.of(_workspace(session, caller.workspace_id)).model_dump())


@router.put("/contact-policy", summary="Replace the frequency caps and quiet hours")
def put_policy(runtime: RuntimeDep, caller: Caller, body: dict[str, Any]) -> PolicyOut:
    caller.require("admin")
    policy = ContactPolicy.parse(body)
    now = clock.now()
    with runtime.db.session(write=True) as session:
        ws = _workspace(session, caller.workspace_id)
        ws.settings = {**(ws.settings or {}), "contact_policy": policy.model_dump()}
        audit(
            session,
            caller,
            "contact_policy.update",
            subject_type="workspace",
            subject_id=ws.id,
            details=policy.model_dump(),
            now=now,
        )
        return PolicyOut(policy=policy.model_dump())
