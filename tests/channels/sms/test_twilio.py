"""SPEC §5 SMS: an HTTP provider adapter (Twilio-style REST API and delivery-status webhooks),
segment counting (GSM-7 vs UCS-2) and cost per segment, retries and failover, and signed webhooks
that refuse a bad signature."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select, update

from shopkeeper.channels.base import OutboundMessage, ProviderRegistry, ProviderResult
from shopkeeper.channels.sms.signature import sign
from shopkeeper.clock import FrozenClock
from shopkeeper.consent.models import Suppression
from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid
from shopkeeper.messaging.models import ChannelProvider, Send
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.sms.fake_twilio import FakeTwilio
from tests.conftest import WorkspaceKeys, free_port
from tests.consent.factories import make_customer
from tests.messaging.factories import add_provider, load, plan

ANN = "+33612345678"
WEBHOOKS = "http://shop.test"


def sms_provider(db: Database, workspace_id: str, fake: FakeTwilio, name: str = "twilio", **values: object) -> str:
    values.setdefault("cost_per_unit", 0.0079)
    values.setdefault("currency", "USD")
    return add_provider(
        db,
        workspace_id,
        channel="sms",
        type="twilio",
        name=name,
        settings=fake.settings(webhook_base_url=WEBHOOKS),
        **values,
    )


def text(db: Database, workspace_id: str, customer_id: str, body: str) -> str:
    return plan(db, workspace_id, customer_id, channel="sms", content={"sms": {"text": body}})


def suppressions(db: Database, workspace_id: str) -> list[tuple[str, str | None, str]]:
    with db.session() as s:
        rows = s.scalars(select(Suppression).where(Suppression.workspace_id == workspace_id))
        return [(r.channel, r.address, r.reason) for r in rows]


def post_form(client: httpx.Client, url: str, form: dict[str, str], headers: dict[str, str]) -> httpx.Response:
    return client.post(url, content=urlencode(form), headers=headers)


def test_the_signature_matches_twilios_published_examples() -> None:
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030"}
    params["To"] = "+18005551212"
    assert (
        sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params.items()) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    params |= {"Caller": "+14158675309", "From": "+14158675309"}
    assert (
        sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),  # GSM-7 past 160 septets: parts of 153
        ("€" * 80, 1),  # extension characters count twice: 160 septets
        ("€" * 81, 2),
        ("a" * 70 + "😀", 2),  # an emoji makes it UCS-2 and takes two of 70 units
        ("ü" * 70, 1),  # ü is in the GSM-7 alphabet: no UCS-2 for it
    ],
)
def test_a_text_reaches_the_provider_with_its_segments_and_cost_recorded(
    frozen_clock: FrozenClock,
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    twilio: FakeTwilio,
    body: str,
    segments: int,
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    provider_id = sms_provider(db, workspace.id, twilio)
    send_id = text(db, workspace.id, ann, body)
    report = worker.drain()
    assert report.sent == 1, load(db, send_id)[0].reason
    [sent] = twilio.messages
    assert (sent["To"], sent["From"], sent["Body"]) == (ANN, twilio.sender, body)
    assert sent["StatusCallback"] == f"{WEBHOOKS}/webhooks/sms/{provider_id}/status?send={send_id}"
    send, events = load(db, send_id)
    assert send.status == "sent" and send.provider == "twilio" and send.provider_message_id == sent["sid"]
    assert send.units == segments
    assert send.cost == pytest.approx(0.0079 * segments) and send.currency == "USD"
    assert events[-1].status == "sent" and events[-1].data["units"] == segments


def test_segments_are_counted_here_when_the_provider_does_not_say(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, twilio: FakeTwilio
) -> None:
    twilio.report_segments = False
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    sms_provider(db, workspace.id, twilio)
    gsm = text(db, workspace.id, ann, "b" * 307)  # 153 + 153 + 1
    ucs = text(db, workspace.id, ann, "Привет! " * 10)  # Cyrillic: 80 UCS-2 units
    worker.drain()
    assert (load(db, gsm)[0].units, load(db, ucs)[0].units) == (3, 2)


def test_the_price_the_provider_reports_wins_over_the_configured_cost(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, twilio: FakeTwilio
) -> None:
    twilio.price = "-0.01580"
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    sms_provider(db, workspace.id, twilio, cost_per_unit=1.0, currency="EUR")
    send_id = text(db, workspace.id, ann, "a" * 161)
    worker.drain()
    send, _ = load(db, send_id)
    assert (send.units, send.cost, send.currency) == (2, 0.0158, "USD")


def test_status_callbacks_move_the_send_to_delivered(
    frozen_clock: FrozenClock,
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    twilio: FakeTwilio,
    app: httpx.Client,
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    sms_provider(db, workspace.id, twilio)
    send_id = text(db, workspace.id, ann, "Your order has shipped")
    worker.drain()
    [sent] = twilio.messages
    for status in ("sent", "delivered"):
        frozen_clock.advance(timedelta(seconds=5))
        assert post_form(app, *twilio.status_callback(sent["sid"], status)).status_code == 204
    send, events = load(db, send_id)
    assert send.status == "delivered"
    assert [e.status for e in events] == ["queued", "sent", "sent", "delivered"]
    assert events[-1].data["provider_status"] == "delivered" and events[-1].at == frozen_clock.now()


def test_a_report_that_overtakes_the_worker_still_finds_its_send(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, twilio: FakeTwilio, app: httpx.Client
) -> None:
    """Twilio may call back before its answer reaches the worker, so before the send knows its
    provider id: the callback URL names the send."""
    answers: list[int] = []
    twilio.before_answer = lambda m: answers.append(
        post_form(app, *twilio.status_callback(m["sid"], "delivered")).status_code
    )
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    sms_provider(db, workspace.id, twilio)
    send_id = text(db, workspace.id, ann, "Your order has shipped")
    worker.drain()
    assert answers == [204]
    send, events = load(db, send_id)
    assert send.status == "delivered" and send.provider_message_id == twilio.messages[0]["sid"]
    assert [e.status for e in events] == ["queued", "delivered", "sent"]  # "sent" came late: kept, not moved back


def test_a_bad_signature_is_refused_and_changes_nothing(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, twilio: FakeTwilio, app: httpx.Client
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    provider_id = sms_provider(db, workspace.id, twilio)
    send_id = text(db, workspace.id, ann, "Your order has shipped")
    worker.drain()
    sid = twilio.messages[0]["sid"]
    url, form, headers = twilio.status_callback(sid, "delivered")

    forged = {
        **headers,
        "X-Twilio-Signature": FakeTwilio(auth_token="not-the-token").signed_headers(url, form)["X-Twilio-Signature"],
    }
    assert post_form(app, url, form, forged).status_code == 403
    assert post_form(app, url, form, {k: v for k, v in headers.items() if k != "X-Twilio-Signature"}).status_code == 403
    assert post_form(app, url, {**form, "MessageStatus": "undelivered"}, headers).status_code == 403  # body changed
    other = url.replace(f"send={send_id}", "send=snd_other")
    assert post_form(app, other, form, headers).status_code == 403  # the URL is signed too
    inbound_url = f"{WEBHOOKS}/webhooks/sms/{provider_id}/inbound"
    inbound_form, inbound_headers = twilio.inbound(inbound_url, ANN, "STOP")
    inbound_headers["X-Twilio-Signature"] = forged["X-Twilio-Signature"]
    refused = post_form(app, inbound_url, inbound_form, inbound_headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert load(db, send_id)[0].status == "sent"
    assert suppressions(db, workspace.id) == []  # the forged STOP did nothing

    # Unknown provider: 404; a signed but malformed request: 400; an unparseable body: 400.
    assert post_form(app, url.replace(provider_id, "prv_unknown"), form, headers).status_code == 404
    bare = {k: v for k, v in form.items() if k != "MessageSid"}
    assert post_form(app, url, bare, twilio.signed_headers(url, bare)).status_code == 400
    garbage = app.post(url, content=b"\xff\xfe=\xff", headers=headers)
    assert garbage.status_code == 400
    nul = {**form, "MessageStatus": "deli\x00vered"}
    assert post_form(app, url, nul, twilio.signed_headers(url, nul)).status_code == 400


def test_a_carrier_bounce_suppresses_the_number_and_a_failure_is_recorded(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, twilio: FakeTwilio, app: httpx.Client
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    bob = make_customer(db, workspace.id, "bob", phone="+4915112345678")
    sms_provider(db, workspace.id, twilio)
    to_ann, to_bob = text(db, workspace.id, ann, "Hello Ann"), text(db, workspace.id, bob, "Hello Bob")
    worker.drain()
    sids = {m["To"]: m["sid"] for m in twilio.messages}
    post_form(app, *twilio.status_callback(sids[ANN], "undelivered", error_code="30005"))
    post_form(app, *twilio.status_callback(sids["+4915112345678"], "failed", error_code="30008"))
    ann_send, bob_send = load(db, to_ann)[0], load(db, to_bob)[0]
    assert ann_send.status == "bounced" and "30005" in (ann_send.reason or "")
    assert bob_send.status == "failed" and "30008" in (bob_send.reason or "")
    assert suppressions(db, workspace.id) == [("sms", ANN, "hard_bounce")]
    again = text(db, workspace.id, ann, "Hello again")
    worker.drain()
    assert load(db, again)[0].status == "suppressed"


@pytest.mark.parametrize(
    ("status", "code", "outcome", "suppressed"),
    [
        (429, 20429, "retried", None),
        (500, 20500, "retried", None),
        (503, 20503, "retried", None),
        (400, 21610, "failed", "stop"),  # the recipient replied STOP to the carrier
        (400, 21211, "failed", "hard_bounce"),  # not a valid number
        (400, 21408, "failed", None),  # region not enabled: the account, not the number
    ],
)
def test_provider_refusals_are_sorted_into_retries_and_failures(
    frozen_clock: FrozenClock,
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    twilio: FakeTwilio,
    status: int,
    code: int,
    outcome: str,
    suppressed: str | None,
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    sms_provider(db, workspace.id, twilio)
    twilio.refuse(status, code, f"error {code}")
    send_id = text(db, workspace.id, ann, "Your code is 1234")
    report = worker.drain()
    send, _ = load(db, send_id)
    assert getattr(report, outcome) == 1
    assert str(code) in (send.reason or "") if outcome == "failed" else send.status == "queued"
    assert suppressions(db, workspace.id) == ([("sms", ANN, suppressed)] if suppressed else [])
    if outcome == "retried":  # and the next attempt goes through
        frozen_clock.set(send.next_attempt_at)
        assert worker.drain().sent == 1
        assert load(db, send_id)[0].status == "sent" and len(twilio.messages) == 1 and len(twilio.requests) == 2


@pytest.mark.parametrize("broken", ["wrong_token", "unreachable"])
def test_a_refused_account_or_an_unreachable_server_is_retried_not_failed(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, twilio: FakeTwilio, broken: str
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    change = (
        {"auth_token": "wrong-token"} if broken == "wrong_token" else {"base_url": f"http://127.0.0.1:{free_port()}"}
    )
    add_provider(db, workspace.id, channel="sms", type="twilio", name="t", settings=twilio.settings(**change))
    send_id = text(db, workspace.id, ann, "Your code is 1234")
    assert worker.drain().retried == 1
    send, events = load(db, send_id)
    assert send.status == "queued" and twilio.messages == []
    assert ("20003" if broken == "wrong_token" else "cannot reach") in (events[-1].reason or "")


def test_a_temporary_refusal_fails_over_to_the_second_provider(
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    twilio: FakeTwilio,
    second_twilio: FakeTwilio,
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    sms_provider(db, workspace.id, twilio, name="primary")
    sms_provider(db, workspace.id, second_twilio, name="backup", priority=5, cost_per_unit=0.01)
    twilio.refuse_always = (500, 20500, "Internal Server Error")
    send_id = text(db, workspace.id, ann, "Your code is 1234")
    assert worker.drain().sent == 1
    send, _ = load(db, send_id)
    assert send.provider == "backup" and send.cost == 0.01
    assert twilio.messages == [] and [m["From"] for m in second_twilio.messages] == [second_twilio.sender]


def test_failover_from_twilio_to_the_dev_provider(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, twilio: FakeTwilio
) -> None:
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    sms_provider(db, workspace.id, twilio, name="primary")
    add_provider(db, workspace.id, channel="sms", type="dev", name="fallback", priority=5)
    twilio.refuse_always = (500, 20500, "Internal Server Error")
    send_id = text(db, workspace.id, ann, "Your code is 1234")
    assert worker.drain().sent == 1
    send, _ = load(db, send_id)
    assert (send.status, send.provider, send.stage) == ("delivered", "fallback", "done")


class StageWitness:
    """A provider that passes our idempotency key on (so it `dedupes`) and notes the send's stage
    at its commit point."""

    channel = "sms"
    dedupes = True
    db: Database | None = None
    stages: ClassVar[list[str]] = []

    def __init__(self, settings: object) -> None:
        return None

    def send(self, message: OutboundMessage) -> ProviderResult:
        message.commit_point()
        assert self.db is not None
        with self.db.session() as s:
            self.stages.append(s.scalars(select(Send.stage).where(Send.id == message.send_id)).one())
        return ProviderResult(f"witness-{message.send_id}")

    def close(self) -> None:
        return None


def test_a_failover_after_the_commit_point_never_makes_the_send_repeatable(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, twilio: FakeTwilio
) -> None:
    """Twilio may have had the message (a 500 after the request): the hand-off stays one that
    recovery must never repeat, even when the next provider would drop repeats itself."""
    ProviderRegistry.register("sms", "stage-witness", StageWitness)
    StageWitness.db, StageWitness.stages = db, []
    ann = make_customer(db, workspace.id, "ann", phone=ANN)
    sms_provider(db, workspace.id, twilio, name="primary")
    add_provider(db, workspace.id, channel="sms", type="stage-witness", name="witness", priority=5)
    twilio.refuse_always = (500, 20500, "Internal Server Error")
    send_id = text(db, workspace.id, ann, "Your code is 1234")
    assert worker.drain().sent == 1
    assert StageWitness.stages == ["handing_off"]
    assert load(db, send_id)[0].provider == "witness"

    # Without a provider before it that may have had the message, it may be repeated.
    twilio.refuse_always = None
    add_provider(db, workspace.id, channel="sms", type="stage-witness", name="alone", priority=0)
    with db.session(write=True) as s:
        s.execute(update(ChannelProvider).where(ChannelProvider.name == "primary").values(enabled=False))
    text(db, workspace.id, ann, "Your code is 5678")
    worker.drain()
    assert StageWitness.stages == ["handing_off", "handing_off_dedup"]


def test_provider_settings_are_checked_and_the_token_is_never_shown(
    db: Database, workspace: WorkspaceKeys, twilio: FakeTwilio, app: httpx.Client
) -> None:
    with pytest.raises(Invalid) as missing:
        add_provider(db, workspace.id, channel="sms", type="twilio", name="x", settings={"account_sid": "AC1"})
    assert missing.value.field == "settings.auth_token"
    auth = {"Authorization": f"Bearer {workspace.secret_key}"}
    bad = app.post(
        "/api/v1/providers",
        headers=auth,
        json={"channel": "sms", "name": "t", "type": "twilio", "settings": twilio.settings(base_url="ftp://x")},
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "settings.base_url"
    made = app.post(
        "/api/v1/providers",
        headers=auth,
        json={"channel": "sms", "name": "t", "type": "twilio", "settings": twilio.settings()},
    )
    assert made.status_code == 201, made.text
    assert made.json()["settings"]["auth_token"] == "********" and twilio.auth_token not in made.text
