"""End to end through a real `shopkeeper serve` behind a (simulated) proxy: Twilio signs the
public address (SHOPKEEPER_PUBLIC_URL) while the request reaches the server on its own port; the
server's own worker sends, Twilio's callbacks come back over HTTP and move the send."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from shopkeeper.db.session import Database
from tests.channels.sms.fake_twilio import FakeTwilio
from tests.channels.sms.test_twilio import ANN
from tests.conftest import start_server
from tests.consent.factories import make_customer

PUBLIC = "https://public.shop.test"


def wait_for(client: httpx.Client, path: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        send: dict[str, Any] = client.get(path).json()
        if send["status"] == status:
            return send
        assert time.monotonic() < deadline, f"still {send['status']}: {send}"
        time.sleep(0.05)


def test_a_text_sent_by_the_server_is_delivered_by_a_signed_callback_through_a_proxy(
    db_url: str, db: Database, make_workspace: Any, twilio: FakeTwilio, tmp_path: Path
) -> None:
    server = start_server(db_url, tmp_path / "server.log", SHOPKEEPER_PUBLIC_URL=PUBLIC)
    try:
        ws = make_workspace("Live")
        ann = make_customer(db, ws.id, "ann", phone=ANN)
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ws.secret_key}"}, timeout=10)
        provider = client.post(
            "/api/v1/providers",
            json={
                "channel": "sms",
                "name": "twilio",
                "type": "twilio",
                "settings": twilio.settings(),
                "cost_per_unit": 0.0079,
                "currency": "USD",
            },
        ).json()
        planned = client.post(
            "/api/v1/sends", json={"customer_id": ann, "channel": "sms", "content": {"sms": {"text": "a" * 161}}}
        ).json()
        sent = wait_for(client, f"/api/v1/sends/{planned['id']}", "sent")
        [message] = twilio.messages
        assert message["StatusCallback"] == f"{PUBLIC}/webhooks/sms/{provider['id']}/status?send={planned['id']}"
        assert sent["provider_message_id"] == message["sid"] and sent["cost"] == 0.0158

        # The proxy forwards to the server; the signature covers the public URL.
        url, form, headers = twilio.status_callback(message["sid"], "delivered")
        answer = httpx.post(url.replace(PUBLIC, server.url), content=urlencode(form), headers=headers)
        assert answer.status_code == 204, answer.text
        wait_for(client, f"/api/v1/sends/{planned['id']}", "delivered")

        inbound = f"{PUBLIC}/webhooks/sms/{provider['id']}/inbound"
        form, headers = twilio.inbound(inbound, ANN, "STOP")
        answer = httpx.post(inbound.replace(PUBLIC, server.url), content=urlencode(form), headers=headers)
        assert answer.status_code == 200 and "<Message>" in answer.text
        # Signed for another address: refused.
        form, headers = twilio.inbound(f"https://elsewhere.test/webhooks/sms/{provider['id']}/inbound", ANN, "START")
        answer = httpx.post(inbound.replace(PUBLIC, server.url), content=urlencode(form), headers=headers)
        assert answer.status_code == 403
        suppressed = client.get("/api/v1/suppressions").json()
        entries = suppressed["data"] if isinstance(suppressed, dict) else suppressed
        assert [(e["channel"], e["reason"]) for e in entries] == [("sms", "stop")]
    finally:
        server.stop()
