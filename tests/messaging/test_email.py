"""SPEC §5 email: SMTP with connection reuse, DKIM signing, List-Unsubscribe on marketing mail,
open pixel and click redirects with signed tokens that move the send's status."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import dkim
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Interaction
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic, set_status
from tests.messaging.factories import add_provider, load, make_template, plan
from tests.messaging.smtp_sink import SmtpSink


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_marketing_mail_over_smtp_carries_unsubscribe_headers_and_tracked_links(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_topic(db, workspace.id, "offers")
    set_status(db, workspace.id, ann, "email", "offers", "opted_in")
    make_template(db, workspace.id, "promo", kind="marketing", topic="offers")
    add_provider(db, workspace.id, name="smtp", settings=smtp_sink.settings(return_path="bounces@acme.test"))
    send_id = plan(db, workspace.id, ann, template="promo")
    worker.drain()

    assert len(smtp_sink.received) == 1, [(e.status, e.reason) for e in load(db, send_id)[1]]
    got = smtp_sink.received[0]
    assert got.mail_from == "bounces@acme.test" and got.rcpt_tos == ["ann@example.com"]
    mail = got.message
    assert mail["To"] == "ann@example.com" and mail["From"] == "Acme <shop@acme.test>"
    assert mail["Message-ID"] == f"<{send_id}@acme.test>"
    assert mail["List-Unsubscribe"].startswith("<http://shop.test/unsubscribe/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = _body(mail, "html")
    assert "http://shop.test/t/c/" in html and "/t/o/" in html
    assert "https://acme.test/shop" in _body(mail, "plain")  # text parts are not rewritten
    send, _ = load(db, send_id)
    assert send.status == "sent" and send.provider_message_id == f"<{send_id}@acme.test>"
    with db.session() as s:
        interaction = s.get(Interaction, send.interaction_id)
        assert interaction is not None and interaction.message_id == f"<{send_id}@acme.test>"


def test_transactional_mail_has_no_unsubscribe_header(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    add_provider(db, workspace.id, name="smtp", settings=smtp_sink.settings())
    plan(db, workspace.id, ann)
    worker.drain()
    assert smtp_sink.received[0].message["List-Unsubscribe"] is None


def test_one_connection_serves_many_messages(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink
) -> None:
    make_template(db, workspace.id)
    add_provider(db, workspace.id, name="smtp", settings=smtp_sink.settings())
    for n in range(5):
        plan(db, workspace.id, make_customer(db, workspace.id, f"u{n}", email=f"u{n}@example.com"))
    assert worker.drain().sent == 5
    assert len(smtp_sink.received) == 5
    (route,) = worker.pool._routes.values()
    assert route.provider.connections == 1  # type: ignore[attr-defined]


def _dns(records: dict[str, bytes]):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return records.get(name.decode().rstrip("."), b"")

    return lookup


def test_dkim_signatures_verify_with_the_published_key_rsa_and_ed25519(
    db: Database, workspace: WorkspaceKeys, worker: DeliveryWorker, smtp_sink: SmtpSink
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    rsa_public = base64.b64encode(
        rsa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_private = base64.b64encode(
        ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    ).decode()
    ed_public = base64.b64encode(
        ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    make_template(db, workspace.id)
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    records = {
        "s1._domainkey.acme.test": b"v=DKIM1; k=rsa; p=" + rsa_public,
        "s2._domainkey.acme.test": b"v=DKIM1; k=ed25519; p=" + ed_public,
    }
    for selector, key, algorithm in (("s1", rsa_pem, "rsa-sha256"), ("s2", ed_private, "ed25519-sha256")):
        name = f"smtp-{selector}"
        dkim_settings = {"domain": "acme.test", "selector": selector, "private_key": key, "algorithm": algorithm}
        provider = add_provider(db, workspace.id, name=name, settings=smtp_sink.settings(dkim=dkim_settings))
        plan(db, workspace.id, ann, idempotency_key=name)
        worker.drain()
        raw = smtp_sink.received[-1].raw
        assert raw.startswith(b"DKIM-Signature:") and f"s={selector}".encode() in raw
        assert dkim.verify(raw, dnsfunc=_dns(records))
        tampered = raw.replace(b"Welcome", b"Welcomf", 1)
        assert not dkim.verify(tampered, dnsfunc=_dns(records))
        with db.session(write=True) as s:
            from shopkeeper.messaging.models import ChannelProvider

            row = s.get(ChannelProvider, provider)
            assert row is not None
            row.enabled = False


def test_opens_and_clicks_move_the_status_forward_and_forged_tokens_do_nothing(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    make_template(db, workspace.id)
    worker = DeliveryWorker(db, base_url="http://testserver", holder="t")
    send_id = plan(db, workspace.id, ann)
    worker.drain()
    with db.session() as s:
        send, _ = load(db, send_id)
        interaction = s.get(Interaction, send.interaction_id)
        assert interaction is not None and interaction.html is not None
        html = interaction.html
    import re

    pixel = re.search(r'src="http://testserver(/t/o/[^"]+)"', html)
    links = re.findall(r'href="http://testserver(/t/c/[^"]+)"', html)
    assert pixel is not None and len(links) == 2

    r = app_client.get(pixel.group(1))
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    assert load(db, send_id)[0].status == "opened"

    r = app_client.get(links[0], follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://acme.test/shop?a=1&b=2"
    send, events = load(db, send_id)
    assert send.status == "clicked" and events[-1].data["url"] == "https://acme.test/shop?a=1&b=2"

    # A second open after the click: kept in history (an open count), status stays "clicked".
    app_client.get(pixel.group(1))
    send, events = load(db, send_id)
    assert send.status == "clicked" and [e.status for e in events].count("opened") == 2

    forged = links[0][:-4] + ("AAAA" if not links[0].endswith("AAAA") else "BBBB")
    r = app_client.get(forged, follow_redirects=False)
    assert r.status_code == 404 and "location" not in r.headers
    assert app_client.get("/t/c/garbage", follow_redirects=False).status_code == 404
    assert app_client.get("/t/o/ws_x.nothing.gif").status_code == 200  # a pixel, whatever happens
    assert [e.status for e in load(db, send_id)[1]].count("clicked") == 1
    worker.pool.close()
