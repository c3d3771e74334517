"""Public reviews (a marketplace, an app store, a review site) as conversations: the author is
matched to a customer by whatever identity the source gives (email, phone, user id; else an
anonymous id of the source and author name), the review is an inbound interaction on the
`review` channel, and the conversation is tagged `review` and triaged like any message — so a
poor review is classified, routed and answered (by email or SMS when the author is reachable).

A review is stored once per (source, external id): a feed that sends it again is told which
conversation it already became.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.normalize import normalise_email, normalise_phone
from shopkeeper.customers.resolution import ResolutionUnit
from shopkeeper.errors import Invalid
from shopkeeper.ids import new_id
from shopkeeper.inbox import conversations
from shopkeeper.inbox.models import Conversation
from shopkeeper.messaging import inbound
from shopkeeper.messaging.models import Interaction

REVIEW_CHANNEL = "review"


class ReviewAuthor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    user_id: str | None = Field(default=None, max_length=200)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=60, description="where it was posted, e.g. trustpilot")
    external_id: str = Field(min_length=1, max_length=200, description="the review's id at the source")
    rating: float = Field(ge=0, description="on the scale below; 1–5 unless `scale` says otherwise")
    scale: int = Field(default=5, ge=2, le=100)
    title: str | None = Field(default=None, max_length=500)
    text: str = Field(default="", max_length=20_000)
    url: str | None = Field(default=None, max_length=2000)
    author: ReviewAuthor = Field(default_factory=ReviewAuthor)
    posted_at: datetime | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return value.strip().lower()


def _identities(review: ReviewIn) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    a = review.author
    if a.user_id:
        keys.append(("user_id", a.user_id.strip()))
    if a.email:
        email = normalise_email(a.email)
        if email is None:
            raise Invalid(f"author.email: {a.email!r} is not an email address", field="author.email")
        keys.append(("email", email))
    if a.phone:
        phone = normalise_phone(a.phone)
        if phone is None:
            raise Invalid(f"author.phone: {a.phone!r} is not a phone number", field="author.phone")
        keys.append(("phone", phone))
    if not keys:
        who = (a.name or review.external_id).strip().lower()
        keys.append(("anonymous_id", f"review:{review.source}:{who}"[:200]))
    return keys


def ingest(session: Session, workspace_id: str, review: ReviewIn, now: datetime) -> tuple[Conversation, bool]:
    """(conversation, created)."""
    if review.rating > review.scale:
        raise Invalid(f"rating: at most the scale ({review.scale})", field="rating")
    message_id = f"review:{review.source}:{review.external_id}"[:300]
    existing = inbound.already_received(session, workspace_id, REVIEW_CHANNEL, message_id)
    if existing is not None and existing.conversation_id:
        found = session.get(Conversation, existing.conversation_id)
        if found is not None:
            return found, False
    keys = _identities(review)
    unit = ResolutionUnit(session, workspace_id, IdentityCache(0), now)
    unit.lock(keys)
    unit.prefetch(keys)
    customer_id = unit.resolve(keys, None, f"review {review.source} {review.external_id}"[:200])
    if review.author.name and unit.customers_created:
        unit.patch_traits(customer_id, {"name": review.author.name})
    unit.flush()
    # Normalised to 1–5, so that rules and the marketing pause compare one scale.
    stars = round(1 + 4 * review.rating / review.scale, 2) if review.scale != 5 else review.rating
    data: dict[str, Any] = {
        "source": review.source,
        "external_id": review.external_id,
        "rating": stars,
        "rating_given": review.rating,
        "scale": review.scale,
        "url": review.url,
        "author_name": review.author.name,
        "posted_at": (review.posted_at or now).isoformat(),
    }
    text = review.text.strip() or (review.title or "").strip()
    interaction = Interaction(
        id=new_id("int"),
        workspace_id=workspace_id,
        customer_id=customer_id,
        channel=REVIEW_CHANNEL,
        direction="in",
        status="received",
        provider=review.source,
        provider_message_id=review.external_id,
        message_id=message_id,
        address=review.author.email or review.author.phone or review.author.user_id,
        subject=review.title or f"{review.source} review, {stars:g}/5",
        text=text,
        data=data,
        created_at=now,
    )
    session.add(interaction)
    session.flush()
    # Answered where the author can be reached; a review site's own reply box is outside.
    channel = "email" if review.author.email else ("sms" if review.author.phone else "chat")
    conversation = conversations.create_for_review(session, workspace_id, customer_id, interaction, data, channel, now)
    return conversation, True
