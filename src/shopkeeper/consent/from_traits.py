"""Subscription changes sent as identify traits, applied inside the ingest transaction.

The documented form:

    traits.subscriptions = {"email": {"newsletter": "opted_in", "*": "opted_out"}, "sms": {...}}

Values are `opted_in`, `opted_out`, `unknown`, or `true`/`false` (opted_in/opted_out). The topic
`"*"` is the channel as a whole, which can be opted out but not opted in: `"*": "opted_in"` (or
`true`) lifts a channel-wide opt-out, i.e. sets `unknown`. Customer.io's `traits.unsubscribed`
is understood too: `true` opts out of email as a whole, `false` lifts that.

An opt-in to a double-opt-in topic on email goes to `pending` through `request_opt_in` (and its
confirmation callbacks), unless the customer already is opted in or pending. Each change is
logged with source `identify` and the event's `context.ip` / `context.userAgent` as proof.

A bad entry (unknown channel or topic, a value that is no status) is skipped and logged at info
level: a customer's consent must never cost the batch its events.

Ingestion calls this once per workspace per transaction, with every identify event of the batch
that carries one of these traits. The topics, and the current statuses of every customer
concerned, are read in one query each; `set_status` (and its own reads) runs only for the
entries that change something, so an app that repeats the same subscriptions on every identify
pays two queries per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent.double_opt_in import needs_double_opt_in, request_opt_in
from shopkeeper.consent.models import ALL_TOPICS, CHANNELS, STATUSES, Subscription, Topic
from shopkeeper.consent.service import Proof, set_status, topics
from shopkeeper.db.scoping import scoped

log = logging.getLogger(__name__)

_SOURCE = "identify"
# (customer id, traits, context) of one identify event, in the order the events came.
TraitsOfEvent = tuple[str, Mapping[str, Any], Mapping[str, Any] | None]


CONSENT_TRAITS = ("subscriptions", "unsubscribed")


def carries_subscriptions(traits: Mapping[str, Any]) -> bool:
    """Cheap enough for every identify event: whether there is anything to do at all."""
    return "subscriptions" in traits or "unsubscribed" in traits


def profile_traits(traits: Mapping[str, Any]) -> dict[str, Any]:
    """The traits to keep on the profile: consent instructions are applied to the consent log
    and not kept as traits, where they would go stale at the next preference-centre change."""
    return {k: v for k, v in traits.items() if k not in CONSENT_TRAITS}


def _status(value: Any) -> str | None:
    if value is True:
        return "opted_in"
    if value is False:
        return "opted_out"
    if isinstance(value, str) and value in STATUSES and value != "pending":
        return value
    return None


def _wanted(customer_id: str, traits: Mapping[str, Any], active: Mapping[str, Topic]) -> list[tuple[str, str, str]]:
    """(channel, topic, status) asked for by one event's traits; bad entries are logged and left out."""
    wanted: list[tuple[str, str, str]] = []

    def skip(what: str) -> None:
        log.info("identify traits: skipped %s for customer %s", what, customer_id)

    unsubscribed = traits.get("unsubscribed")
    if "unsubscribed" in traits:
        if isinstance(unsubscribed, bool):
            wanted.append(("email", ALL_TOPICS, "opted_out" if unsubscribed else "unknown"))
        else:
            skip(f"unsubscribed={type(unsubscribed).__name__} (expected true or false)")
    subscriptions = traits.get("subscriptions")
    if "subscriptions" not in traits:
        return wanted
    if not isinstance(subscriptions, Mapping):
        skip("subscriptions (expected an object of channels)")
        return wanted
    for channel, per_topic in subscriptions.items():
        if channel not in CHANNELS:
            skip(f"subscriptions.{str(channel)[:40]} (not a channel)")
            continue
        if not isinstance(per_topic, Mapping):
            skip(f"subscriptions.{channel} (expected an object of topics)")
            continue
        for topic, value in per_topic.items():
            where = f"subscriptions.{channel}.{str(topic)[:80]}"
            status = _status(value)
            if status is None:
                skip(f"{where} (value is not opted_in, opted_out, unknown, true or false)")
            elif topic == ALL_TOPICS:
                wanted.append((channel, ALL_TOPICS, "unknown" if status == "opted_in" else status))
            elif topic not in active:
                skip(f"{where} (no active topic)")
            elif channel not in active[topic].channels:
                skip(f"{where} (the topic is not sent on {channel})")
            else:
                wanted.append((channel, topic, status))
    return wanted


def _text(value: Any, limit: int) -> str | None:
    """A context string as proof: text only, no NUL (PostgreSQL refuses it), within the column."""
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "")[:limit] or None


def _proof(context: Mapping[str, Any] | None) -> Proof:
    context = context or {}
    return Proof(source=_SOURCE, ip=_text(context.get("ip"), 64), user_agent=_text(context.get("userAgent"), 500))


def apply_subscription_traits(session: Session, workspace_id: str, asks: Sequence[TraitsOfEvent], now: datetime) -> int:
    """Apply the subscription traits of a run of identify events; returns how many statuses changed."""
    if not asks:
        return 0
    active = {topic.key: topic for topic in topics(session, workspace_id)}
    customer_ids = sorted({customer_id for customer_id, _, _ in asks})
    current: dict[tuple[str, str, str], str] = {
        (row.customer_id, row.channel, row.topic): row.status
        for row in session.scalars(scoped(Subscription, workspace_id).where(Subscription.customer_id.in_(customer_ids)))
    }
    workspace: Workspace | None = None
    changed = 0
    for customer_id, traits, context in asks:
        proof: Proof | None = None
        for channel, topic, status in _wanted(customer_id, traits, active):
            key = (customer_id, channel, topic)
            before = current.get(key, "unknown")
            double = (
                topic != ALL_TOPICS
                and status == "opted_in"
                and needs_double_opt_in(active[topic].double_opt_in, channel)
            )
            if before == status or (double and before == "pending"):
                continue
            proof = proof or _proof(context)
            # Every entry was checked by `_wanted`, so these do not refuse; an error raised here
            # (by a confirmation callback, say) is a fault and fails the transaction as it should.
            if double:
                workspace = workspace or session.get(Workspace, workspace_id)
                assert workspace is not None
                after = request_opt_in(session, workspace, customer_id, channel, topic, proof, now).status
            else:
                set_status(session, workspace_id, customer_id, channel, topic, status, proof, now)
                after = status
            current[key] = after
            changed += 1
    return changed
