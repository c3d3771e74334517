"""SPEC §5 Web Push (VAPID): a page registers its PushSubscription, the delivery worker encrypts
each message for it and posts it to the push service with a signed VAPID JWT and a TTL; a push
service on loopback checks the signature and decrypts the payload as the browser would. Gone
subscriptions (404/410) are removed and suppressed; 429/5xx are retried."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from shopkeeper import clock
from shopkeeper.channels.base import OutboundMessage, ProviderError
from shopkeeper.channels.push.subscriptions import decode
from shopkeeper.channels.push.vapid import generate, load, public_key_of
from shopkeeper.channels.push.webpush import WebPushProvider
from shopkeeper.config import Settings, get_settings
from shopkeeper.consent.models import Suppression
from shopkeeper.customers.models import Identity
from shopkeeper.db.session import Database
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.chat.helpers import token_for
from tests.channels.push.push_service import Browser, PushService
from tests.conftest import WorkspaceKeys
from tests.messaging.factories import add_provider, plan
from tests.messaging.factories import load as load_send

SUBJECT = "mailto:ops@acme.test"
NOTICE = {
    "push": {
        "title": "Your order shipped",
        "body": "Hi {{ customer.first_name | default: 'there' }}, it is on its way",
        "url": "https://acme.test/o/7",
    }
}


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service = PushService()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def private_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The push service of these tests lives on loopback: the operator allows private addresses."""
    monkeypatch.setenv("SHOPKEEPER_PUSH_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def client(db_url: str, db: Database, private_allowed: None) -> Iterator[TestClient]:
    from shopkeeper.app import create_app

    settings = Settings(database_url=db_url, auto_migrate=False, push_allow_private=True, delivery_in_process=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def vapid(db: Database, workspace: WorkspaceKeys) -> tuple[str, str]:
    private_key, public_key = generate()
    add_provider(
        db,
        workspace.id,
        channel="push",
        type="webpush",
        name="web",
        settings={"vapid_private_key": private_key, "vapid_subject": SUBJECT, "ttl": 3600},
    )
    return private_key, public_key


@pytest.fixture
def worker(db: Database) -> Iterator[DeliveryWorker]:
    delivery = DeliveryWorker(db)
    try:
        yield delivery
    finally:
        delivery.pool.close()


def subscribe(
    client: httpx.Client, workspace: WorkspaceKeys, subscription: dict[str, Any], **who: str
) -> httpx.Response:
    who = who or {"anonymous_id": "anon-push"}
    return client.post(
        "/push/subscriptions", json={"write_key": workspace.write_key, "subscription": subscription, **who}
    )


def owner(db: Database, workspace_id: str, endpoint: str) -> Identity | None:
    with db.session() as session:
        rows = session.scalars(
            select(Identity).where(Identity.workspace_id == workspace_id, Identity.kind == "device_token")
        ).all()
    found = [r for r in rows if r.value.partition("#")[0] == endpoint]
    assert len(found) <= 1
    return found[0] if found else None


def test_a_registered_subscription_gets_an_encrypted_push_with_a_vapid_signature(
    client: TestClient,
    db: Database,
    workspace: WorkspaceKeys,
    vapid: tuple[str, str],
    push_service: PushService,
    worker: DeliveryWorker,
) -> None:
    # The page asks for the applicationServerKey, subscribes, and registers the subscription.
    key = client.get("/push/vapid-public-key", params={"write_key": workspace.write_key})
    assert key.status_code == 200 and key.json() == {"public_key": vapid[1]}
    _browser, subscription = push_service.subscribe()
    registered = subscribe(client, workspace, subscription)
    assert registered.status_code == 201, registered.text
    identity = owner(db, workspace.id, subscription["endpoint"])
    assert identity is not None and identity.id == registered.json()["id"]
    assert decode(identity.value) is not None and decode(identity.value).endpoint == subscription["endpoint"]  # type: ignore[union-attr]

    send_id = plan(db, workspace.id, identity.customer_id, channel="push", content=NOTICE)
    assert worker.drain().sent == 1

    assert push_service.refusals == []
    [delivery] = push_service.deliveries
    assert delivery.payload == {
        "title": "Your order shipped",
        "body": "Hi there, it is on its way",
        "url": "https://acme.test/o/7",
        "send_id": send_id,
    }
    assert delivery.headers["ttl"] == "3600" and delivery.headers["content-encoding"] == "aes128gcm"
    assert delivery.vapid_key == vapid[1]  # signed by the key the page subscribed with
    assert delivery.claims["sub"] == SUBJECT and delivery.claims["aud"] == push_service.origin
    send, _history = load_send(db, send_id)
    assert send.status == "sent" and send.provider_message_id.startswith("/messages/")  # type: ignore[union-attr]
    assert send.to_address == identity.value


@pytest.mark.parametrize("status", [410, 404])
def test_a_gone_subscription_fails_the_send_and_is_removed_and_suppressed(
    status: int,
    client: TestClient,
    db: Database,
    workspace: WorkspaceKeys,
    vapid: tuple[str, str],
    push_service: PushService,
    worker: DeliveryWorker,
) -> None:
    _, subscription = push_service.subscribe()
    assert subscribe(client, workspace, subscription).status_code == 201
    identity = owner(db, workspace.id, subscription["endpoint"])
    assert identity is not None
    push_service.answers[subscription["endpoint"].removeprefix(push_service.origin)] = status

    send_id = plan(db, workspace.id, identity.customer_id, channel="push", content=NOTICE)
    report = worker.drain()
    assert (report.failed, report.retried) == (1, 0)
    send, _ = load_send(db, send_id)
    assert send.status == "failed" and f"answered {status}" in (send.reason or "")
    assert owner(db, workspace.id, subscription["endpoint"]) is None
    with db.session() as session:
        suppression = session.scalar(select(Suppression).where(Suppression.workspace_id == workspace.id))
    assert suppression is not None and (suppression.channel, suppression.reason) == ("push", "hard_bounce")

    # Nothing is left to send to: the next push is skipped, not posted.
    again = plan(db, workspace.id, identity.customer_id, channel="push", content=NOTICE)
    worker.drain()
    assert load_send(db, again)[0].status == "skipped"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retried_later(
    status: int,
    client: TestClient,
    db: Database,
    workspace: WorkspaceKeys,
    vapid: tuple[str, str],
    push_service: PushService,
    worker: DeliveryWorker,
) -> None:
    _, subscription = push_service.subscribe()
    assert subscribe(client, workspace, subscription).status_code == 201
    identity = owner(db, workspace.id, subscription["endpoint"])
    assert identity is not None
    push_service.answers[subscription["endpoint"].removeprefix(push_service.origin)] = status

    send_id = plan(db, workspace.id, identity.customer_id, channel="push", content=NOTICE)
    assert worker.drain().retried == 1
    send, history = load_send(db, send_id)
    assert (send.status, send.stage, send.attempts) == ("queued", "waiting", 1)
    assert send.next_attempt_at > clock.now() and "retry 1" in (history[-1].reason or "")
    assert owner(db, workspace.id, subscription["endpoint"]) is not None  # kept


def test_registration_checks_who_is_asking_and_what_they_send(
    client: TestClient, db: Database, workspace: WorkspaceKeys, push_service: PushService
) -> None:
    _, subscription = push_service.subscribe()
    nobody = WorkspaceKeys(workspace.id, workspace.slug, "wk_nope", "")
    assert subscribe(client, nobody, subscription).status_code == 401
    token = token_for(db, workspace.id, "user-5")
    tampered = subscribe(client, workspace, subscription, user_id="user-5", user_token=token[::-1])
    assert tampered.status_code == 401 and tampered.json()["error"]["message"].startswith("user_token")
    bad_key = dict(subscription, keys={"p256dh": "AAAA", "auth": subscription["keys"]["auth"]})
    refused = subscribe(client, workspace, bad_key)
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "subscription.keys.p256dh"
    no_keys = subscribe(client, workspace, {"endpoint": subscription["endpoint"]})
    assert no_keys.status_code == 400 and no_keys.json()["error"]["field"] == "subscription.keys"
    fragment = subscribe(client, workspace, dict(subscription, endpoint=subscription["endpoint"] + "#x"))
    assert fragment.status_code == 400
    assert client.post("/push/subscriptions", content=b"{nope").status_code == 400
    with db.session() as session:
        assert session.scalar(select(Identity.id).where(Identity.kind == "device_token")) is None

    signed_in = subscribe(client, workspace, subscription, user_id="user-5", user_token=token)
    assert signed_in.status_code == 201
    assert owner(db, workspace.id, subscription["endpoint"]) is not None

    preflight = client.options(
        "/push/subscriptions",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_http_and_private_endpoints_are_refused_unless_the_operator_allows_them(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, push_service: PushService
) -> None:
    """The default configuration (app_client): push services are public https addresses only —
    the endpoint comes from a browser, so it must never aim the server at the internal network."""
    browser = Browser()
    for endpoint in (push_service.origin + "/push/x", "https://127.0.0.1/push/x", "https://169.254.169.254/latest"):
        answer = subscribe(app_client, workspace, browser.subscription(endpoint))
        assert answer.status_code == 400, endpoint
        assert answer.json()["error"]["field"] == "subscription.endpoint"
    accepted = subscribe(app_client, workspace, browser.subscription("https://push.example.com/send/abc"))
    assert accepted.status_code == 201

    # And at send time the provider refuses a loopback endpoint (whatever is stored).
    private_key, _ = generate()
    provider = WebPushProvider({"vapid_private_key": private_key, "vapid_subject": SUBJECT}, allow_private=False)
    value = (
        f"{push_service.origin}/push/x#p256dh={browser.subscription('x')['keys']['p256dh']}&auth=AAAAAAAAAAAAAAAAAAAAAA"
    )
    message = OutboundMessage(
        "snd_1", workspace.id, "cus_1", "push", "transactional", value, {"title": "t", "body": "b"}, "k"
    )
    with pytest.raises(ProviderError) as caught:
        provider.send(message)
    provider.close()
    assert caught.value.code == "blocked_address" and not caught.value.temporary
    assert push_service.deliveries == []


def test_the_page_can_unsubscribe_and_a_browser_has_one_subscription_per_endpoint(
    client: TestClient, db: Database, workspace: WorkspaceKeys, push_service: PushService
) -> None:
    _browser, subscription = push_service.subscribe()
    assert subscribe(client, workspace, subscription, anonymous_id="anon-1").status_code == 201
    first = owner(db, workspace.id, subscription["endpoint"])
    # New keys for the same endpoint replace the old ones; so does another visitor on that browser.
    renewed = Browser().subscription(subscription["endpoint"])
    assert subscribe(client, workspace, renewed, anonymous_id="anon-1").status_code == 201
    second = owner(db, workspace.id, subscription["endpoint"])
    assert second is not None and first is not None and second.value != first.value
    assert second.customer_id == first.customer_id
    assert subscribe(client, workspace, renewed, anonymous_id="anon-2").status_code == 201
    third = owner(db, workspace.id, subscription["endpoint"])
    assert third is not None and third.customer_id != first.customer_id

    gone = client.request(
        "DELETE", "/push/subscriptions", json={"write_key": workspace.write_key, "endpoint": subscription["endpoint"]}
    )
    assert gone.status_code == 200 and gone.json() == {"removed": 1}
    assert owner(db, workspace.id, subscription["endpoint"]) is None


def test_erasing_the_customer_erases_the_subscription_and_its_keys(
    client: TestClient, db: Database, workspace: WorkspaceKeys, push_service: PushService
) -> None:
    _browser, subscription = push_service.subscribe()
    assert subscribe(client, workspace, subscription).status_code == 201
    identity = owner(db, workspace.id, subscription["endpoint"])
    assert identity is not None
    erased = client.post(
        f"/api/v1/customers/{identity.customer_id}/erase",
        headers={"Authorization": f"Bearer {workspace.secret_key}"},
        json={"confirm": identity.customer_id},
    )
    assert erased.status_code == 200, erased.text
    assert owner(db, workspace.id, subscription["endpoint"]) is None
    keys = subscription["keys"]
    with db.session() as session:
        suppressions = session.scalars(select(Suppression).where(Suppression.channel == "push")).all()
        for table_text in (repr([(s.address, s.note) for s in suppressions]),):
            assert keys["auth"] not in table_text and keys["p256dh"] not in table_text
    assert [s.reason for s in suppressions] == ["erased"]


def test_vapid_keys_from_the_cli_sign_and_bad_provider_settings_are_refused(
    app_client: httpx.Client, workspace: WorkspaceKeys
) -> None:
    from shopkeeper.cli import app

    result = CliRunner().invoke(app, ["push", "vapid-keys", "--json"])
    assert result.exit_code == 0, result.output
    import json

    pair = json.loads(result.output)
    assert public_key_of(load(pair["private_key"]).private_key) == pair["public_key"]

    auth = {"Authorization": f"Bearer {workspace.secret_key}"}
    for settings, field in (
        ({"vapid_private_key": "not-a-key", "vapid_subject": SUBJECT}, "settings.vapid_private_key"),
        ({"vapid_private_key": pair["private_key"], "vapid_subject": "ops"}, "settings.vapid_subject"),
        ({"vapid_private_key": pair["private_key"], "vapid_subject": SUBJECT, "ttl": -1}, "settings.ttl"),
    ):
        answer = app_client.post(
            "/api/v1/providers",
            headers=auth,
            json={"channel": "push", "name": "w", "type": "webpush", "settings": settings},
        )
        assert answer.status_code == 400 and answer.json()["error"]["field"] == field
    ok = app_client.post(
        "/api/v1/providers",
        headers=auth,
        json={
            "channel": "push",
            "name": "w",
            "type": "webpush",
            "settings": {"vapid_private_key": pair["private_key"], "vapid_subject": SUBJECT},
        },
    )
    assert ok.status_code == 201 and ok.json()["settings"]["vapid_private_key"] != pair["private_key"]  # redacted
