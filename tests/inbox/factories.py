"""Building blocks for inbox tests: agents, teams, rules and policies written through the
services, and inbound messages received the way the channels receive them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.auth import service as auth_service
from shopkeeper.auth.models import Workspace
from shopkeeper.db.session import Database
from shopkeeper.ids import new_id
from shopkeeper.inbox import routing
from shopkeeper.inbox.models import Conversation, ConversationEvent, RoutingRule, SlaPolicy, Team
from shopkeeper.messaging import inbound


def make_agent(db: Database, workspace_id: str, email: str, *, available: bool = True) -> str:
    with db.session(write=True) as s:
        user = auth_service.create_user(s, workspace_id, email=email, role="agent", now=clock.now(), name=email)
        user.available = available
        return user.id


def make_team(db: Database, workspace_id: str, key: str, members: list[str], strategy: str = "round_robin") -> str:
    now = clock.now()
    with db.session(write=True) as s:
        team = Team(
            id=new_id("team"),
            workspace_id=workspace_id,
            key=key,
            name=key.title(),
            members=members,
            strategy=strategy,
            created_at=now,
            updated_at=now,
        )
        s.add(team)
        return team.id


def set_rules(db: Database, workspace_id: str, rules: list[dict[str, Any]]) -> None:
    parsed = routing.parse_rules(rules)
    now = clock.now()
    with db.session(write=True) as s:
        routing.check_references(s, workspace_id, parsed)
        for n, rule in enumerate(parsed):
            s.add(
                RoutingRule(
                    id=new_id("rule"),
                    workspace_id=workspace_id,
                    name=rule.name,
                    position=n,
                    enabled=rule.enabled,
                    continue_matching=rule.continue_,
                    conditions=rule.conditions.model_dump(exclude_none=True),
                    actions=rule.actions.model_dump(exclude_none=True),
                    created_at=now,
                    updated_at=now,
                )
            )


def make_policy(db: Database, workspace_id: str, key: str = "standard", **values: Any) -> str:
    now = clock.now()
    with db.session(write=True) as s:
        policy = SlaPolicy(
            id=new_id("sla"),
            workspace_id=workspace_id,
            key=key,
            name=key,
            created_at=now,
            updated_at=now,
            **{"is_default": True, **values},
        )
        s.add(policy)
        return policy.id


def set_inbox(db: Database, workspace_id: str, settings: dict[str, Any]) -> None:
    with db.session(write=True) as s:
        ws = s.get(Workspace, workspace_id)
        assert ws is not None
        ws.settings = {**(ws.settings or {}), "inbox": settings}


def sms_in(db: Database, workspace_id: str, phone: str, text: str, message_id: str | None = None) -> str:
    """An inbound SMS as the SMS webhook stores it; returns the customer id."""
    with db.session(write=True) as s:
        stored = inbound.receive(
            s,
            workspace_id,
            channel="sms",
            kind="phone",
            address=phone,
            text=text,
            now=clock.now(),
            provider="twilio",
            provider_message_id=message_id or new_id("SM"),
        )
        assert stored is not None
        return stored.customer_id


def conversation_of(db: Database, workspace_id: str, customer_id: str) -> Conversation:
    with db.session() as s:
        rows = list(
            s.scalars(
                select(Conversation).where(
                    Conversation.workspace_id == workspace_id, Conversation.customer_id == customer_id
                )
            )
        )
        assert len(rows) == 1, rows
        s.expunge(rows[0])
        return rows[0]


def kinds(db: Database, conversation_id: str) -> list[str]:
    with db.session() as s:
        return list(
            s.scalars(
                select(ConversationEvent.kind)
                .where(ConversationEvent.conversation_id == conversation_id)
                .order_by(ConversationEvent.seq)
            )
        )
