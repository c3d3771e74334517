"""SPEC §12: outbound webhook steps refuse private and loopback addresses unless allowed by
config — proved through the delivery pipeline with the operator's allowance off (the default)."""

from __future__ import annotations

import pytest

from shopkeeper.db.session import Database
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.webhook.factories import make_endpoint, plan_webhook
from tests.channels.webhook.receiver import Receiver
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer
from tests.messaging.factories import load

pytestmark = pytest.mark.usefixtures("guard_on")


def test_with_the_guard_on_a_loopback_endpoint_is_refused_at_connect_time(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, receiver: Receiver
) -> None:
    """An endpoint saved while private addresses were allowed, delivered after the operator
    turned the allowance off: the guard refuses at connect time, and nothing reaches the
    receiver."""
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = make_endpoint(db, workspace.id, receiver.url, allow_private=True)
    send_id = plan_webhook(db, workspace.id, ann, endpoint.id, order={"id": 1})
    assert worker.drain().failed == 1
    send, _ = load(db, send_id)
    assert send.status == "failed" and send.reason is not None and "127.0.0.1" in send.reason
    assert "private" in send.reason
    assert receiver.requests == []


@pytest.mark.parametrize("url", ["http://10.0.0.1/hooks", "http://169.254.169.254/latest/meta-data/"])
def test_with_the_guard_on_private_and_link_local_addresses_are_refused_before_connecting(
    url: str, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = make_endpoint(db, workspace.id, url, allow_private=True)
    send_id = plan_webhook(db, workspace.id, ann, endpoint.id, order={"id": 1})
    assert worker.drain().failed == 1
    send, _ = load(db, send_id)
    assert send.reason is not None and url.split("/")[2] in send.reason and "private" in send.reason
