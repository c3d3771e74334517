"""Email double opt-in: an opt-in to a `double_opt_in` topic waits (`pending`) until confirmed.

`request_opt_in` is the one way to ask for an opt-in from any door (API, identify traits,
preference centre): for a double-opt-in topic on email it records `pending` and mints a signed
confirmation link (`/consent/confirm/{token}`, 7 days by default); for any other topic or
channel it opts in directly. Confirming (the public page) records `opted_in` with source
`double-opt-in`.

Nothing here sends an email: the project has no delivery pipeline yet. Instead, whoever will
deliver the confirmation message (the email channel) registers a callback with
`on_opt_in_requested`. Callbacks run after the status is recorded, inside the caller's
transaction and with its session, so that they can write their outbox row in the same
transaction as the `pending` status (both commit, or neither). They must not do network I/O;
an exception raised by one propagates to the caller and undoes the request. Until a channel
subscribes, a pending request simply waits, and the confirmation page still works for anyone
given the link.

A channel-wide opt-out is not lifted by a topic opt-in (only the customer can lift it, in the
preference centre): such a request is still recorded, but `can_contact` keeps refusing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent.service import Proof, check_channel, set_status, standing, topic_by_key
from shopkeeper.consent.tokens import LIFETIMES, confirm_url
from shopkeeper.customers.service import profile_ids
from shopkeeper.errors import Invalid

DOUBLE_OPT_IN_CHANNELS = ("email",)


@dataclass(frozen=True, slots=True)
class OptInRequest:
    """What became of an opt-in request, and the link that confirms it when one is needed."""

    workspace_id: str
    customer_id: str
    channel: str
    topic: str
    status: str  # "pending" (waits for confirmation) or "opted_in"
    confirm_url: str | None
    expires_at: datetime | None
    consent_event_id: str | None  # None when the status did not change

    @property
    def needs_confirmation(self) -> bool:
        return self.status == "pending"


OptInCallback = Callable[[Session, OptInRequest], None]
_callbacks: list[OptInCallback] = []
_callbacks_lock = threading.Lock()


def on_opt_in_requested(callback: OptInCallback) -> Callable[[], None]:
    """Call `callback(session, request)` whenever a confirmation is requested; returns a
    function that removes it again."""
    with _callbacks_lock:
        _callbacks.append(callback)

    def remove() -> None:
        with _callbacks_lock:
            if callback in _callbacks:
                _callbacks.remove(callback)

    return remove


def has_opt_in_listeners() -> bool:
    """Whether anything will deliver a confirmation link (so pages never promise a message
    that nobody sends)."""
    with _callbacks_lock:
        return bool(_callbacks)


def needs_double_opt_in(double_opt_in: bool, channel: str) -> bool:
    return double_opt_in and channel in DOUBLE_OPT_IN_CHANNELS


def request_opt_in(
    session: Session,
    ws: Workspace,
    customer_id: str,
    channel: str,
    topic: str,
    proof: Proof,
    now: datetime,
    *,
    base_url: str | None = None,
    lifetime: timedelta | None = None,
) -> OptInRequest:
    """Opt in, or start a double opt-in. A customer already opted in stays opted in (asking again
    never downgrades consent to `pending`); one already pending gets a fresh link."""
    check_channel(channel)
    row = topic_by_key(session, ws.id, topic)
    if row.archived_at is not None:
        raise Invalid(f"topic {topic!r} is archived: nobody can opt in to it any more", field="topic")
    if channel not in row.channels:
        raise Invalid(f"topic {topic!r} is not sent on {channel}", field="channel")
    customer, ids = profile_ids(session, ws.id, customer_id)
    if not needs_double_opt_in(row.double_opt_in, channel):
        event = set_status(session, ws.id, customer.id, channel, topic, "opted_in", proof, now)
        return OptInRequest(ws.id, customer.id, channel, topic, "opted_in", None, None, event.id if event else None)
    if standing(session, ws.id, ids, channel, topic).status == "opted_in":
        return OptInRequest(ws.id, customer.id, channel, topic, "opted_in", None, None, None)
    event = set_status(session, ws.id, customer.id, channel, topic, "pending", proof, now)
    valid_for = lifetime if lifetime is not None else LIFETIMES["confirm"]
    url = confirm_url(ws, customer.id, channel, topic, now, base_url=base_url, lifetime=valid_for)
    request = OptInRequest(
        ws.id, customer.id, channel, topic, "pending", url, now + valid_for, event.id if event else None
    )
    with _callbacks_lock:
        callbacks = list(_callbacks)
    for callback in callbacks:
        callback(session, request)
    return request
