"""Contact pressure: how much we have been in a customer's face lately.

Each recent message counts by how intrusive its channel is (a call more than a push, a push
more than an email) and fades with age (half-life of a week), so the score reads as "about this
many emails' worth of attention this week".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.consent.models import Contact

CHANNEL_WEIGHTS = {"voice": 5.0, "sms": 3.0, "whatsapp": 3.0, "push": 2.0, "email": 1.0, "chat": 1.0, "webhook": 0.0}
HALF_LIFE = timedelta(days=7)
HORIZON = timedelta(days=60)


def pressure_score(session: Session, workspace_id: str, customer_ids: Sequence[str], now: datetime) -> float:
    rows = session.execute(
        select(Contact.at, Contact.weight).where(
            Contact.workspace_id == workspace_id,
            Contact.customer_id.in_(customer_ids),
            Contact.at > now - HORIZON,
            Contact.at <= now,
        )
    )
    score = 0.0
    for at, weight in rows:
        age = now - (at if at.tzinfo else at.replace(tzinfo=now.tzinfo))
        score += weight * 0.5 ** (age / HALF_LIFE)
    return round(score, 2)
