"""The CSAT survey sent when a conversation is resolved, and the customer's answer.

The survey is an ordinary send (consent gate, the customer's channel) whose text carries a
signed link to a small public page; the page shows five buttons and records the answer only on
POST, so a mail scanner that follows links cannot answer for the customer. The answer is kept
on the conversation and, as a "Survey Answered" event ({survey: csat, score}), on the customer,
where the satisfaction scores (segments.scores.satisfaction) count it. A poor answer reopens the
conversation for a follow-up and, if the workspace says so, pauses marketing until it is
resolved again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent import holds
from shopkeeper.errors import Invalid, NotFound
from shopkeeper.events.models import Event
from shopkeeper.ids import new_id
from shopkeeper.inbox import conversations, live, sla
from shopkeeper.inbox.models import Conversation
from shopkeeper.inbox.settings import InboxSettings
from shopkeeper.segments.scores.satisfaction import SURVEY_EVENT

_SALT = "shopkeeper.csat.v1"
MAX_COMMENT = 2000


def token_for(workspace: Workspace, conversation_id: str) -> str:
    signed = URLSafeSerializer(workspace.signing_secret, salt=_SALT).dumps({"c": conversation_id})
    return f"{workspace.id}.{signed}"


def conversation_for_token(session: Session, token: str) -> tuple[Workspace, Conversation]:
    workspace_id, _, signed = token.partition(".")
    workspace = session.get(Workspace, workspace_id) if workspace_id and len(token) < 1000 else None
    if workspace is None:
        raise NotFound("this survey link is not valid")
    try:
        payload = URLSafeSerializer(workspace.signing_secret, salt=_SALT).loads(signed)
    except BadData:
        raise NotFound("this survey link is not valid") from None
    conversation = session.get(Conversation, str(payload.get("c")))
    if conversation is None or conversation.workspace_id != workspace.id:
        raise NotFound("this conversation no longer exists")
    return workspace, conversation


def survey_url(base_url: str, workspace: Workspace, conversation_id: str) -> str:
    return f"{base_url.rstrip('/')}/c/csat/{token_for(workspace, conversation_id)}"


def send_survey(session: Session, conversation: Conversation, base_url: str, now: datetime) -> bool:
    """Send the survey for a just-resolved conversation once, if the workspace asks for it."""
    workspace = session.get(Workspace, conversation.workspace_id)
    if workspace is None or conversation.csat_sent_at is not None:
        return False
    settings = InboxSettings.of(workspace).csat
    if not settings.enabled or (settings.channels is not None and conversation.channel not in settings.channels):
        return False
    url = survey_url(base_url, workspace, conversation.id)
    text = settings.text.replace("{{ survey_url }}", url).replace("{{survey_url}}", url)
    if url not in text:
        text = f"{text} {url}"
    resolved = conversation.resolved_at  # a conversation resolved again gets a new survey
    conversations.reply(
        session,
        conversation,
        text=text,
        subject=settings.subject if conversation.channel == "email" else None,
        actor="system",
        now=now,
        idempotency_key=f"inbox-csat:{conversation.id}:{resolved.isoformat() if resolved else ''}",
        source="system",
        event_kind="csat_sent",
    )
    conversation.csat_sent_at = now
    return True


def record_answer(
    session: Session, workspace: Workspace, conversation: Conversation, score: Any, comment: Any, now: datetime
) -> None:
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score.strip())
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise Invalid("score: a whole number from 1 to 5", field="score")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT or "\x00" in comment):
        raise Invalid(f"comment: text of at most {MAX_COMMENT} characters", field="comment")
    comment = (comment or "").strip() or None
    first_answer = conversation.csat_score is None
    conversation.csat_score = score
    conversation.csat_comment = comment
    conversation.updated_at = now
    live.record(session, conversation, "csat", "customer", now, {"score": score, "comment": comment})
    session.add(
        Event(
            id=new_id("evt"),
            workspace_id=workspace.id,
            customer_id=conversation.customer_id,
            # One answer per conversation counts; a changed answer replaces nothing in history.
            message_id=f"csat:{conversation.id}:{now.isoformat()}",
            type="track",
            name=SURVEY_EVENT,
            timestamp=now,
            received_at=now,
            properties={"survey": "csat", "score": score, "conversation_id": conversation.id, "comment": comment},
        )
    )
    settings = InboxSettings.of(workspace)
    if score <= settings.csat.poor_at_most and first_answer:
        if conversation.status == "resolved":
            conversation.status = "open"
            conversation.resolved_at = None
            conversation.tags = [
                *(conversation.tags or []),
                *([] if "poor-csat" in (conversation.tags or []) else ["poor-csat"]),
            ]
            sla.start(conversation, sla.policy_for(session, conversation), now)
            live.record(session, conversation, "reopened", "system", now, {"from": "resolved", "reason": "poor CSAT"})
        if settings.pause_marketing.on_poor_csat and holds.place(
            session, workspace.id, conversation.customer_id, "poor_csat", conversation.id, now
        ):
            live.record(session, conversation, "marketing_paused", "system", now, {"reason": "poor_csat"})
