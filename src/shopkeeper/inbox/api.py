"""The agent API: conversations (list with filters, thread with the customer's 360° view, reply,
note, tag, assign, snooze, resolve, reopen), teams, routing rules, SLA policies, canned
replies, agents' availability, inbox settings, reviews in, SLA alerts, and the live stream."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import User, Workspace
from shopkeeper.auth.principal import Principal
from shopkeeper.auth.service import audit
from shopkeeper.customers.api import customer_view
from shopkeeper.db.scoping import by_key, get_scoped, scoped
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.errors import Conflict, Invalid, NotFound
from shopkeeper.ids import new_id
from shopkeeper.inbox import canned, conversations, csat, listing, reviews, routing, sla
from shopkeeper.inbox.hours import BusinessHours
from shopkeeper.inbox.models import (
    CannedReply,
    Conversation,
    ConversationEvent,
    RoutingRule,
    SlaPolicy,
    Team,
)
from shopkeeper.inbox.schemas import (
    AgentOut,
    AgentPatch,
    AssignIn,
    CannedIn,
    CannedOut,
    CannedPatch,
    ConversationOut,
    ConversationPage,
    ConversationPatch,
    EventOut,
    MessageOut,
    NoteIn,
    ReplyIn,
    ReplyOut,
    RuleOut,
    SlaPolicyIn,
    SlaPolicyOut,
    SnoozeIn,
    TagsIn,
    TeamIn,
    TeamOut,
    TeamPatch,
    ThreadOut,
)
from shopkeeper.inbox.settings import InboxSettings
from shopkeeper.inbox.stream import StreamFilter, events, poll_seconds, resume_after
from shopkeeper.messaging.models import Interaction
from shopkeeper.pagination import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/api/v1", tags=["inbox"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _out(conversation: Conversation, now: datetime) -> ConversationOut:
    out = ConversationOut.model_validate(conversation)
    out.sla_state = sla.state(conversation, now)
    return out


def _actor(session: Session, caller: Principal, agent_id: str | None) -> str:
    """The user an integration acts for (`agent_id`), else the caller itself."""
    if agent_id is None:
        return caller.actor
    return f"user:{conversations.active_user(session, caller.workspace_id, agent_id, 'agent_id').id}"


# -- conversations ------------------------------------------------------------------------------
@router.get("/conversations", summary="Conversations, newest activity first, with filters")
def list_conversations(
    runtime: RuntimeDep,
    caller: Caller,
    status: Annotated[list[str] | None, Query(description="open, pending, snoozed, resolved (repeatable)")] = None,
    channel: str | None = None,
    team: str | None = None,
    assignee_id: Annotated[str | None, Query(description="a user id, or `none` for unassigned")] = None,
    intent: str | None = None,
    sentiment: str | None = None,
    priority: Annotated[str | None, Query(description="low, normal, high, urgent")] = None,
    sla_state: Annotated[str | None, Query(description="breached, due_soon, ok, none")] = None,
    tag: str | None = None,
    customer_id: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> ConversationPage:
    now = clock.now()
    filters = listing.Filters(
        status=status or (),
        channel=channel,
        team=team,
        assignee_id=assignee_id,
        intent=intent,
        sentiment=sentiment,
        priority=priority,
        sla_state=sla_state,
        tag=tag,
        customer_id=customer_id,
    )
    with runtime.db.session() as session:
        rows, next_cursor = listing.page(session, caller.workspace_id, filters, cursor=cursor, limit=limit, now=now)
        return ConversationPage(data=[_out(r, now) for r in rows], next_cursor=next_cursor)


@router.get("/conversations/{conversation_id}", summary="A thread: messages, notes and events, with the 360° view")
def get_thread(runtime: RuntimeDep, caller: Caller, conversation_id: str) -> ThreadOut:
    with runtime.db.session() as session:
        conversation = conversations.get(session, caller.workspace_id, conversation_id)
        messages = session.scalars(
            scoped(Interaction, caller.workspace_id)
            .where(Interaction.conversation_id == conversation.id)
            .order_by(Interaction.created_at, Interaction.id)
        )
        log = session.scalars(
            scoped(ConversationEvent, caller.workspace_id)
            .where(ConversationEvent.conversation_id == conversation.id)
            .order_by(ConversationEvent.seq)
        )
        return ThreadOut(
            conversation=_out(conversation, clock.now()),
            messages=[MessageOut.model_validate(m) for m in messages],
            events=[EventOut.model_validate(e) for e in log],
            customer=customer_view(session, caller.workspace_id, conversation.customer_id, 20).model_dump(mode="json"),
        )


def _act(runtime: RuntimeDep, caller: Principal, conversation_id: str, action: Any) -> ConversationOut:
    caller.require("agent")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        conversation = conversations.get(session, caller.workspace_id, conversation_id)
        action(session, conversation, now)
        session.flush()
        return _out(conversation, now)


@router.post("/conversations/{conversation_id}/reply", status_code=201, summary="Answer the customer")
def reply(runtime: RuntimeDep, caller: Caller, conversation_id: str, body: ReplyIn) -> ReplyOut:
    caller.require("agent")
    if (body.text is None) == (body.canned is None):
        raise Invalid("text: give a text or a canned reply (one of the two)", field="text")
    now = clock.now()
    if body.send_at is not None and body.send_at.tzinfo is None:
        raise Invalid("send_at: give a time zone, e.g. 2026-12-01T09:00:00Z", field="send_at")
    with runtime.db.session(write=True) as session:
        conversation = conversations.get(session, caller.workspace_id, conversation_id)
        actor = _actor(session, caller, body.agent_id)
        text = body.text or ""
        if body.canned is not None:
            text = canned.render(session, canned.get(session, caller.workspace_id, body.canned), conversation, now)
        send = conversations.reply(
            session,
            conversation,
            text=text,
            actor=actor,
            now=now,
            channel=body.channel,
            subject=body.subject,
            send_at=body.send_at,
            idempotency_key=body.idempotency_key,
        )
        return ReplyOut(send_id=send.id, status=send.status, channel=send.channel, text=text)


@router.post("/conversations/{conversation_id}/notes", status_code=201, summary="An internal note")
def add_note(runtime: RuntimeDep, caller: Caller, conversation_id: str, body: NoteIn) -> ConversationOut:
    caller.require("agent")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        conversation = conversations.get(session, caller.workspace_id, conversation_id)
        conversations.note(session, conversation, body.text, _actor(session, caller, body.agent_id), now)
        return _out(conversation, now)


@router.post("/conversations/{conversation_id}/tags", summary="Add and remove tags")
def tags(runtime: RuntimeDep, caller: Caller, conversation_id: str, body: TagsIn) -> ConversationOut:
    return _act(
        runtime,
        caller,
        conversation_id,
        lambda s, c, now: conversations.retag(s, c, body.add, body.remove, caller.actor, now),
    )


@router.post("/conversations/{conversation_id}/assign", summary="Assign to an agent and/or a team (null unassigns)")
def assign(runtime: RuntimeDep, caller: Caller, conversation_id: str, body: AssignIn) -> ConversationOut:
    fields = body.model_fields_set
    if not fields:
        raise Invalid("assignee_id: give assignee_id and/or team", field="assignee_id")
    return _act(
        runtime,
        caller,
        conversation_id,
        lambda s, c, now: conversations.assign(
            s, c, assignee_id=body.assignee_id, team_key=body.team, actor=caller.actor, now=now, fields=set(fields)
        ),
    )


@router.post("/conversations/{conversation_id}/snooze", summary="Snooze until a time; a new message wakes it")
def snooze(runtime: RuntimeDep, caller: Caller, conversation_id: str, body: SnoozeIn) -> ConversationOut:
    if body.until.tzinfo is None:
        raise Invalid("until: give a time zone, e.g. 2026-12-01T09:00:00Z", field="until")
    return _act(
        runtime, caller, conversation_id, lambda s, c, now: conversations.snooze(s, c, body.until, caller.actor, now)
    )


@router.post("/conversations/{conversation_id}/resolve", summary="Resolve (sends the CSAT survey if configured)")
def resolve(runtime: RuntimeDep, caller: Caller, conversation_id: str) -> ConversationOut:
    def act(session: Session, conversation: Conversation, now: datetime) -> None:
        if conversations.resolve(session, conversation, caller.actor, now):
            csat.send_survey(session, conversation, runtime.settings.public_url, now)

    return _act(runtime, caller, conversation_id, act)


@router.post("/conversations/{conversation_id}/reopen", summary="Reopen a resolved or snoozed conversation")
def reopen(runtime: RuntimeDep, caller: Caller, conversation_id: str) -> ConversationOut:
    return _act(
        runtime, caller, conversation_id, lambda s, c, now: conversations.set_status(s, c, "open", caller.actor, now)
    )


@router.patch("/conversations/{conversation_id}", summary="Change status (open/pending) or priority")
def patch_conversation(
    runtime: RuntimeDep, caller: Caller, conversation_id: str, body: ConversationPatch
) -> ConversationOut:
    def act(session: Session, conversation: Conversation, now: datetime) -> None:
        if body.status is not None:
            conversations.set_status(session, conversation, body.status, caller.actor, now)
        if body.priority is not None:
            conversations.set_priority(session, conversation, body.priority, caller.actor, now)

    return _act(runtime, caller, conversation_id, act)


@router.get("/inbox/alerts", summary="SLA breaches, newest first")
def alerts(runtime: RuntimeDep, caller: Caller, open_only: bool = True, limit: Limit = DEFAULT_LIMIT) -> list[EventOut]:
    with runtime.db.session() as session:
        query = scoped(ConversationEvent, caller.workspace_id).where(ConversationEvent.kind == "sla_breached")
        if open_only:
            query = query.join(Conversation, Conversation.id == ConversationEvent.conversation_id).where(
                Conversation.status != "resolved"
            )
        rows = session.scalars(query.order_by(ConversationEvent.seq.desc()).limit(limit))
        return [EventOut.model_validate(r) for r in rows]


@router.get(
    "/inbox/stream",
    summary="Live conversation events (Server-Sent Events; resumes from Last-Event-ID)",
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    runtime: RuntimeDep,
    caller: Caller,
    conversation_id: str | None = None,
    assignee_id: str | None = None,
    after: Annotated[int | None, Query(ge=0, description="replay events after this id")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    body = events(
        runtime.db,
        caller.workspace_id,
        resume_after(after, last_event_id),
        StreamFilter(conversation_id, assignee_id),
        poll_seconds=poll_seconds(runtime.db),
        disconnected=request.is_disconnected,
    )
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- reviews ------------------------------------------------------------------------------------
@router.post("/reviews", summary="Ingest a public review: it becomes a conversation tagged `review`")
def post_review(runtime: RuntimeDep, caller: Caller, body: reviews.ReviewIn, response: Response) -> ConversationOut:
    now = clock.now()
    if body.posted_at is not None and body.posted_at.tzinfo is None:
        raise Invalid("posted_at: give a time zone", field="posted_at")
    with runtime.db.session(write=True) as session:
        conversation, created = reviews.ingest(session, caller.workspace_id, body, now)
        response.status_code = 201 if created else 200
        session.flush()
        return _out(conversation, now)


# -- teams --------------------------------------------------------------------------------------
def _check_members(session: Session, workspace_id: str, members: list[str]) -> list[str]:
    members = list(dict.fromkeys(members))
    if members:
        known = set(session.scalars(select(User.id).where(User.workspace_id == workspace_id, User.id.in_(members))))
        for n, member in enumerate(members):
            if member not in known:
                raise Invalid(f"members[{n}]: no user {member!r} in this workspace", field=f"members[{n}]")
    return members


@router.get("/teams", summary="Inbox teams")
def list_teams(runtime: RuntimeDep, caller: Caller) -> list[TeamOut]:
    with runtime.db.session() as session:
        return [
            TeamOut.model_validate(t) for t in session.scalars(scoped(Team, caller.workspace_id).order_by(Team.key))
        ]


@router.post("/teams", status_code=201, summary="Create a team")
def create_team(runtime: RuntimeDep, caller: Caller, body: TeamIn) -> TeamOut:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        if by_key(session, Team, caller.workspace_id, body.key) is not None:
            raise Conflict(f"key: a team {body.key!r} exists", field="key")
        team = Team(
            id=new_id("team"),
            workspace_id=caller.workspace_id,
            key=body.key,
            name=body.name,
            members=_check_members(session, caller.workspace_id, body.members),
            strategy=body.strategy,
            created_at=now,
            updated_at=now,
        )
        session.add(team)
        session.flush()
        return TeamOut.model_validate(team)


@router.patch("/teams/{team_key}", summary="Change a team")
def patch_team(runtime: RuntimeDep, caller: Caller, team_key: str, body: TeamPatch) -> TeamOut:
    caller.require("admin")
    with runtime.db.session(write=True) as session:
        team = by_key(session, Team, caller.workspace_id, team_key)
        if team is None:
            raise NotFound(f"no team {team_key!r}")
        if body.name is not None:
            team.name = body.name
        if body.members is not None:
            team.members = _check_members(session, caller.workspace_id, body.members)
        if body.strategy is not None:
            team.strategy = body.strategy
        team.updated_at = clock.now()
        return TeamOut.model_validate(team)


# -- routing rules ------------------------------------------------------------------------------
@router.get("/routing-rules", summary="Routing rules, in the order they are tried")
def list_rules(runtime: RuntimeDep, caller: Caller) -> list[RuleOut]:
    with runtime.db.session() as session:
        return [RuleOut.model_validate(r) for r in routing.rules_of(session, caller.workspace_id)]


@router.put("/routing-rules", summary="Replace the routing rules (an ordered list), all or nothing")
def put_rules(runtime: RuntimeDep, caller: Caller, body: list[dict[str, Any]]) -> list[RuleOut]:
    caller.require("admin")
    rules = routing.parse_rules(body)
    now = clock.now()
    with runtime.db.session(write=True) as session:
        routing.check_references(session, caller.workspace_id, rules)
        for old in routing.rules_of(session, caller.workspace_id):
            session.delete(old)
        session.flush()
        rows = []
        for position, rule in enumerate(rules):
            row = RoutingRule(
                id=new_id("rule"),
                workspace_id=caller.workspace_id,
                name=rule.name,
                position=position,
                enabled=rule.enabled,
                continue_matching=rule.continue_,
                conditions=rule.conditions.model_dump(exclude_none=True),
                actions=rule.actions.model_dump(exclude_none=True),
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            rows.append(row)
        audit(
            session,
            caller,
            "inbox.routing_rules",
            subject_type="workspace",
            subject_id=caller.workspace_id,
            details={"rules": len(rows)},
            now=now,
        )
        session.flush()
        return [RuleOut.model_validate(r) for r in rows]


# -- SLA policies -------------------------------------------------------------------------------
def _check_policy(body: SlaPolicyIn) -> None:
    if not (body.first_response_minutes or body.next_response_minutes or body.resolution_minutes):
        raise Invalid("first_response_minutes: give at least one of the three clocks", field="first_response_minutes")
    if body.business_hours is not None:
        BusinessHours.parse(body.business_hours)


@router.get("/sla-policies", summary="SLA policies")
def list_policies(runtime: RuntimeDep, caller: Caller) -> list[SlaPolicyOut]:
    with runtime.db.session() as session:
        rows = session.scalars(scoped(SlaPolicy, caller.workspace_id).order_by(SlaPolicy.key))
        return [SlaPolicyOut.model_validate(r) for r in rows]


def _apply_policy(session: Session, workspace_id: str, row: SlaPolicy, body: SlaPolicyIn, now: datetime) -> None:
    if body.is_default:
        for other in session.scalars(scoped(SlaPolicy, workspace_id).where(SlaPolicy.is_default.is_(True))):
            other.is_default = False
    for name in (
        "name",
        "first_response_minutes",
        "next_response_minutes",
        "resolution_minutes",
        "business_hours",
        "is_default",
    ):
        setattr(row, name, getattr(body, name))
    row.updated_at = now


@router.post("/sla-policies", status_code=201, summary="Create an SLA policy")
def create_policy(runtime: RuntimeDep, caller: Caller, body: SlaPolicyIn) -> SlaPolicyOut:
    caller.require("admin")
    _check_policy(body)
    now = clock.now()
    with runtime.db.session(write=True) as session:
        if by_key(session, SlaPolicy, caller.workspace_id, body.key) is not None:
            raise Conflict(f"key: an SLA policy {body.key!r} exists", field="key")
        row = SlaPolicy(id=new_id("sla"), workspace_id=caller.workspace_id, key=body.key, created_at=now)
        _apply_policy(session, caller.workspace_id, row, body, now)
        session.add(row)
        session.flush()
        return SlaPolicyOut.model_validate(row)


@router.put("/sla-policies/{policy_key}", summary="Replace an SLA policy (running clocks keep their due times)")
def put_policy(runtime: RuntimeDep, caller: Caller, policy_key: str, body: SlaPolicyIn) -> SlaPolicyOut:
    caller.require("admin")
    with runtime.db.session(write=True) as session:
        row = by_key(session, SlaPolicy, caller.workspace_id, policy_key)
        if row is None:
            raise NotFound(f"no SLA policy {policy_key!r}")
        if body.key != policy_key:
            raise Invalid(f"key: the body says {body.key!r}, the path {policy_key!r}", field="key")
        _check_policy(body)
        _apply_policy(session, caller.workspace_id, row, body, clock.now())
        session.flush()
        return SlaPolicyOut.model_validate(row)


# -- canned replies -----------------------------------------------------------------------------
@router.get("/canned-replies", summary="Canned replies")
def list_canned(runtime: RuntimeDep, caller: Caller) -> list[CannedOut]:
    with runtime.db.session() as session:
        rows = session.scalars(scoped(CannedReply, caller.workspace_id).order_by(CannedReply.key))
        return [CannedOut.model_validate(r) for r in rows]


@router.post("/canned-replies", status_code=201, summary="Create a canned reply (Liquid)")
def create_canned(runtime: RuntimeDep, caller: Caller, body: CannedIn) -> CannedOut:
    caller.require("agent")
    with runtime.db.session(write=True) as session:
        return CannedOut.model_validate(
            canned.create(session, caller.workspace_id, body.key, body.name, body.body, clock.now())
        )


@router.patch("/canned-replies/{canned_key}", summary="Change a canned reply")
def patch_canned(runtime: RuntimeDep, caller: Caller, canned_key: str, body: CannedPatch) -> CannedOut:
    caller.require("agent")
    with runtime.db.session(write=True) as session:
        row = canned.get(session, caller.workspace_id, canned_key)
        return CannedOut.model_validate(canned.update(session, row, body.name, body.body, clock.now()))


@router.delete("/canned-replies/{canned_key}", status_code=204, summary="Delete a canned reply")
def delete_canned(runtime: RuntimeDep, caller: Caller, canned_key: str) -> Response:
    caller.require("agent")
    with runtime.db.session(write=True) as session:
        session.delete(canned.get(session, caller.workspace_id, canned_key))
    return Response(status_code=204)


@router.get("/conversations/{conversation_id}/canned/{canned_key}", summary="A canned reply rendered for this customer")
def render_canned(runtime: RuntimeDep, caller: Caller, conversation_id: str, canned_key: str) -> dict[str, str]:
    with runtime.db.session() as session:
        conversation = conversations.get(session, caller.workspace_id, conversation_id)
        row = canned.get(session, caller.workspace_id, canned_key)
        return {"text": canned.render(session, row, conversation, clock.now())}


# -- agents and settings ------------------------------------------------------------------------
@router.get("/agents", summary="Users who can answer, their availability and open conversations")
def list_agents(runtime: RuntimeDep, caller: Caller) -> list[AgentOut]:
    with runtime.db.session() as session:
        users = list(
            session.scalars(scoped(User, caller.workspace_id).where(User.disabled.is_(False)).order_by(User.email))
        )
        counts = conversations.open_counts(session, caller.workspace_id, [u.id for u in users])
        return [
            AgentOut(
                id=u.id, email=u.email, name=u.name, role=u.role, available=u.available, open_conversations=counts[u.id]
            )
            for u in users
        ]


@router.patch("/agents/{user_id}", summary="Mark an agent available or away")
def patch_agent(runtime: RuntimeDep, caller: Caller, user_id: str, body: AgentPatch) -> AgentOut:
    caller.require("agent")
    with runtime.db.session(write=True) as session:
        user = get_scoped(session, User, caller.workspace_id, user_id, "user")
        user.available = body.available
        session.flush()
        count = conversations.open_counts(session, caller.workspace_id, [user.id])[user.id]
        return AgentOut(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            available=user.available,
            open_conversations=count,
        )


@router.get("/inbox/settings", summary="Auto-acknowledgement, CSAT survey, marketing pause, business hours")
def get_settings(runtime: RuntimeDep, caller: Caller) -> InboxSettings:
    with runtime.db.session() as session:
        workspace = session.get(Workspace, caller.workspace_id)
        if workspace is None:
            raise NotFound("workspace not found")
        return InboxSettings.of(workspace)


@router.put("/inbox/settings", summary="Replace the inbox settings")
def put_settings(runtime: RuntimeDep, caller: Caller, body: dict[str, Any]) -> InboxSettings:
    caller.require("admin")
    parsed = InboxSettings.parse(body)
    now = clock.now()
    with runtime.db.session(write=True) as session:
        workspace = session.get(Workspace, caller.workspace_id)
        if workspace is None:
            raise NotFound("workspace not found")
        workspace.settings = {**(workspace.settings or {}), "inbox": parsed.model_dump(mode="json")}
        audit(session, caller, "inbox.settings", subject_type="workspace", subject_id=workspace.id, details={}, now=now)
        return parsed
