"""The webhook endpoint admin API: the signing secret is shown once (on create and rotate), never
listed; changes are audited; bad input names its field; and, end to end through the running
app, a planned webhook send reaches a real receiver signed with that secret."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

from shopkeeper.channels.webhook.signature import SignatureError, verify
from tests.channels.webhook.receiver import Receiver
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer


def _auth(keys: WorkspaceKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.secret_key}"}


def _audit(client: httpx.Client, keys: WorkspaceKeys) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = client.get("/api/v1/audit", headers=_auth(keys)).json()["data"]
    return entries


@pytest.mark.usefixtures("allow_private")
def test_endpoint_lifecycle_shows_the_secret_once_and_audits_every_change(
    app_client: httpx.Client, workspace: WorkspaceKeys, receiver: Receiver
) -> None:
    auth = _auth(workspace)
    created = app_client.post(
        "/api/v1/webhook-endpoints", headers=auth, json={"url": receiver.url, "events": ["send.status_changed"]}
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    secret = endpoint["secret"]
    assert secret.startswith("whsec_") and len(secret) == 70
    assert endpoint["secret_hint"] == f"whsec_…{secret[-4:]}" and endpoint["enabled"] is True

    listed = app_client.get("/api/v1/webhook-endpoints", headers=auth)
    one = app_client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=auth)
    assert [e["id"] for e in listed.json()] == [endpoint["id"]]
    assert secret not in listed.text and secret not in one.text and "secret" not in one.json()

    patched = app_client.patch(
        f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=auth, json={"events": ["*"], "enabled": False}
    )
    assert patched.status_code == 200 and patched.json()["events"] == ["*"] and patched.json()["enabled"] is False

    rotated = app_client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=auth).json()
    assert rotated["secret"] != secret and rotated["secret_hint"] == f"whsec_…{rotated['secret'][-4:]}"

    deleted = app_client.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=auth)
    assert deleted.status_code == 200
    assert app_client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=auth).status_code == 404

    actions = [e["action"] for e in _audit(app_client, workspace) if e["subject_id"] == endpoint["id"]]
    assert sorted(actions) == sorted(
        [
            "webhook_endpoint.create",
            "webhook_endpoint.update",
            "webhook_endpoint.rotate_secret",
            "webhook_endpoint.delete",
        ]
    )
    assert secret not in str(_audit(app_client, workspace)) and rotated["secret"] not in str(
        _audit(app_client, workspace)
    )


@pytest.mark.usefixtures("guard_on")
@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "http://127.0.0.1:9/hooks", "events": ["*"]}, "url", "private or loopback"),
        ({"url": "http://169.254.169.254/", "events": ["*"]}, "url", "private or loopback"),
        ({"url": "ftp://example.com/", "events": ["*"]}, "url", "https://"),
        ({"url": "https://hooks.example.com/", "events": ["order.eaten"]}, "events", "not an event type"),
        ({"url": "https://hooks.example.com/", "events": []}, "events", ""),
        ({"url": "https://hooks.example.com/"}, "events", "required"),
        ({"events": ["*"]}, "url", "required"),
    ],
)
def test_bad_endpoints_are_refused_naming_the_field(
    app_client: httpx.Client, workspace: WorkspaceKeys, body: dict[str, Any], field: str, words: str
) -> None:
    r = app_client.post("/api/v1/webhook-endpoints", headers=_auth(workspace), json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == field and words in error["message"]
    assert app_client.get("/api/v1/webhook-endpoints", headers=_auth(workspace)).json() == []


@pytest.mark.usefixtures("guard_on")
def test_changing_an_endpoint_to_a_private_address_is_refused(
    app_client: httpx.Client, workspace: WorkspaceKeys
) -> None:
    auth = _auth(workspace)
    endpoint = app_client.post(
        "/api/v1/webhook-endpoints", headers=auth, json={"url": "https://hooks.example.com/in", "events": ["*"]}
    ).json()
    r = app_client.patch(
        f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=auth, json={"url": "http://10.0.0.5/in"}
    )
    assert r.status_code == 400 and r.json()["error"]["field"] == "url"
    assert app_client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=auth).json()["url"] == (
        "https://hooks.example.com/in"
    )


@pytest.mark.usefixtures("allow_private")
def test_a_webhook_send_planned_through_the_api_reaches_the_receiver_signed(
    app_client: httpx.Client, db: Any, workspace: WorkspaceKeys, receiver: Receiver
) -> None:
    auth = _auth(workspace)
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    endpoint = app_client.post(
        "/api/v1/webhook-endpoints", headers=auth, json={"url": receiver.url, "events": ["call.recorded"]}
    ).json()
    send = app_client.post(
        "/api/v1/sends",
        headers=auth,
        json={
            "customer_id": ann,
            "channel": "webhook",
            "content": {
                "webhook": {"body": '{"customer": {{ customer.id | json }}, "email": {{ customer.email | json }}}'}
            },
            "data": {"endpoint_id": endpoint["id"]},
            "idempotency_key": "crm-sync-ann",
        },
    )
    assert send.status_code == 201, send.text
    deadline = time.monotonic() + 10  # the app's own delivery worker sends it
    while not receiver.requests:
        assert time.monotonic() < deadline, "the webhook did not arrive"
        time.sleep(0.02)
    [request] = receiver.requests
    assert orjson.loads(request.body) == {"customer": ann, "email": "ann@example.com"}
    assert request.headers["shopkeeper-id"] == send.json()["id"]
    at = int(request.headers["shopkeeper-timestamp"])
    assert verify(endpoint["secret"], request.headers["shopkeeper-signature"], request.body, now=at) == at
    with pytest.raises(SignatureError):
        verify("whsec_" + "0" * 64, request.headers["shopkeeper-signature"], request.body, now=at)
    while app_client.get(f"/api/v1/sends/{send.json()['id']}", headers=auth).json()["status"] != "delivered":
        assert time.monotonic() < deadline, "the send was not marked delivered"
        time.sleep(0.02)
    # Not on the customer's timeline: a webhook goes to a system, not to the customer.
    timeline = app_client.get(f"/api/v1/customers/{ann}/timeline", headers=auth).json()
    assert all(item.get("data", {}).get("channel") != "webhook" for item in timeline["data"])
