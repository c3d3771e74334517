"""SPEC §4 email double opt-in, for real: an opt-in to a double-opt-in topic plans the
confirmation email in the same transaction, the delivery worker sends it over SMTP, and the link
in the mail confirms the subscription."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

import shopkeeper.channels.email.double_opt_in  # noqa: F401 - registers the confirmation mail (as the app does)
from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.consent.double_opt_in import request_opt_in
from shopkeeper.consent.policy import can_contact
from shopkeeper.consent.service import Proof
from shopkeeper.customers.models import Identity
from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Send
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic, status_of, workspace_row
from tests.consent.html_form import parse
from tests.messaging.factories import add_provider, load, make_template
from tests.messaging.smtp_sink import Received, SmtpSink

_CONFIRM = re.compile(r"https?://\S+?/consent/confirm/[A-Za-z0-9._-]+")


@pytest.fixture
def client(db_url: str, db: Database) -> Iterator[httpx.Client]:
    """The app in-process, delivering nothing itself: the test's worker sends, when told."""
    from fastapi.testclient import TestClient

    from shopkeeper.app import create_app
    from shopkeeper.config import Settings

    settings = Settings(database_url=db_url, auto_migrate=False, delivery_in_process=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def text_of(mail: Received) -> str:
    part = mail.message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def confirmation_sends(db: Database, workspace_id: str) -> list[Send]:
    with db.session() as s:
        return list(s.scalars(select(Send).where(Send.workspace_id == workspace_id, Send.source == "system")))


def test_an_identify_opt_in_sends_the_confirmation_mail_whose_link_confirms(
    frozen_clock: FrozenClock,
    client: httpx.Client,
    db: Database,
    workspace: WorkspaceKeys,
    worker: DeliveryWorker,
    smtp_sink: SmtpSink,
) -> None:
    make_topic(db, workspace.id, "newsletter", channels=("email",), double_opt_in=True)
    add_provider(db, workspace.id, name="smtp", settings=smtp_sink.settings())
    answer = client.post(
        "/v1/identify",
        auth=(workspace.write_key, ""),
        json={
            "userId": "zoe",
            "traits": {"email": "zoe@example.com", "subscriptions": {"email": {"newsletter": "opted_in"}}},
        },
    )
    assert answer.status_code == 200, answer.text
    with db.session() as s:
        zoe = s.scalar(select(Identity.customer_id).where(Identity.value == "zoe"))
    assert zoe is not None and status_of(db, workspace.id, zoe, "email", "newsletter") == "pending"
    (planned,) = confirmation_sends(db, workspace.id)  # committed with the pending status
    assert planned.kind == "transactional" and planned.status == "queued"
    assert planned.source_ref == "double-opt-in:email:newsletter"

    report = worker.drain()
    assert report.sent == 1, load(db, planned.id)[0].reason
    (mail,) = smtp_sink.received
    assert mail.rcpt_tos == ["zoe@example.com"]
    assert mail.message["Subject"].startswith("Please confirm: Newsletter from Acme")
    assert mail.message["List-Unsubscribe"] is None  # transactional
    found = _CONFIRM.search(text_of(mail))
    assert found is not None, text_of(mail)
    with db.session() as s:
        assert can_contact(s, workspace.id, zoe, "email", "newsletter", "marketing", clock.now()).outcome == "deny"

    path = urlsplit(found.group(0)).path
    page = client.get(path)
    assert page.status_code == 200 and status_of(db, workspace.id, zoe, "email", "newsletter") == "pending"
    done = client.post(path, data=dict(parse(page.text).form.data()))
    assert done.status_code == 200
    assert status_of(db, workspace.id, zoe, "email", "newsletter") == "opted_in"
    with db.session() as s:
        decision = can_contact(s, workspace.id, zoe, "email", "newsletter", "marketing", clock.now())
    assert decision.outcome == "allow", decision.explanation


def test_a_workspace_template_replaces_the_built_in_text_and_a_waiting_mail_is_not_doubled(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink
) -> None:
    yan = make_customer(db, workspace.id, "yan", email="yan@example.com")
    make_topic(db, workspace.id, "newsletter", channels=("email",), double_opt_in=True)
    make_template(
        db,
        workspace.id,
        "double-opt-in",
        content={
            "email": {
                "subject": "One click for {{ data.topic.name }}",
                "text": "Hej {{ customer.email }}, confirm here: {{ data.confirm_url }}",
            }
        },
    )
    add_provider(db, workspace.id, name="smtp", settings=smtp_sink.settings())
    ws = workspace_row(db, workspace.id)
    for _ in range(2):  # asked twice before anything went out: one mail, whose link works
        with db.session(write=True) as s:
            request_opt_in(s, ws, yan, "email", "newsletter", Proof(source="api"), clock.now())
    assert len(confirmation_sends(db, workspace.id)) == 1
    worker.drain()
    (mail,) = smtp_sink.received
    assert mail.message["Subject"] == "One click for Newsletter"
    assert text_of(mail).startswith("Hej yan@example.com, confirm here: http")
    assert _CONFIRM.search(text_of(mail)) is not None

    # Once that one has gone, asking again (say, the mail was lost) sends a new one.
    with db.session(write=True) as s:
        request_opt_in(s, ws, yan, "email", "newsletter", Proof(source="api"), clock.now())
    worker.drain()
    assert len(smtp_sink.received) == 2 and len(confirmation_sends(db, workspace.id)) == 2


def test_opt_ins_that_need_no_confirmation_send_nothing(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker
) -> None:
    una = make_customer(db, workspace.id, "una", email="una@example.com", phone="+14155550111")
    make_topic(db, workspace.id, "offers", channels=("email", "sms"))
    make_topic(db, workspace.id, "newsletter", channels=("email", "sms"), double_opt_in=True)
    ws = workspace_row(db, workspace.id)
    with db.session(write=True) as s:
        request_opt_in(s, ws, una, "email", "offers", Proof(source="api"), clock.now())
        request_opt_in(s, ws, una, "sms", "newsletter", Proof(source="api"), clock.now())  # email only
    assert confirmation_sends(db, workspace.id) == []


def test_the_app_registers_the_confirmation_mail() -> None:
    """In a fresh interpreter: importing the app is what makes double opt-in send mail."""
    code = (
        "from shopkeeper.consent.double_opt_in import has_opt_in_listeners as h; a = h(); "
        "import shopkeeper.app; print(a, h())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stderr
