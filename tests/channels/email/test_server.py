"""The receiving SMTP server: it takes mail only for addresses a workspace claims, refuses what is
too large or too many, acknowledges only what is committed, speaks STARTTLS when given a
certificate; the claims are set (and checked) through the workspace API; `shopkeeper
inbound-smtp` runs it on its own."""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from shopkeeper.channels.email.inbound import InboundSmtpServer, tls_context
from shopkeeper.channels.email.replies import on_inbound_email
from shopkeeper.customers.models import Customer
from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Interaction
from tests.channels.email import mails
from tests.channels.email.conftest import claim, deliver
from tests.conftest import WorkspaceKeys, free_port

REPLY = mails.gmail_reply(original_id="<nothing@elsewhere.example.com>", sender="ivy@example.com")


def stored(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Interaction)) or 0)


def test_unknown_recipients_are_refused_at_rcpt(
    db: Database, workspace: WorkspaceKeys, inbound: InboundSmtpServer
) -> None:
    claim(db, workspace.id, "support@acme.test")
    for address in ("sales@acme.test", "support@acme.test.evil.example.com", "not-an-address", "support+x@other.test"):
        got = deliver(inbound.port, REPLY, address)
        assert (got.stage, got.code) == ("rcpt", 550), address
        assert "no such mailbox" in got.text
    # A +tag is free, case does not matter.
    assert deliver(inbound.port, REPLY, "Support+Anything@ACME.test").code == 250
    assert stored(db) == 1


def test_size_and_recipient_limits(db: Database, workspace: WorkspaceKeys, inbound: InboundSmtpServer) -> None:
    claim(db, workspace.id, "acme.test")
    with smtplib.SMTP("127.0.0.1", inbound.port, timeout=30) as conn:
        conn.ehlo("mx.example.net")
        assert conn.has_extn("size") and int(conn.esmtp_features["size"]) == 256 * 1024
        # Announced too large: refused before any data is sent.
        code, _ = conn.mail("a@example.net", options=[f"SIZE={300 * 1024}"])
        assert code == 552
    big = REPLY.replace(b"Thanks!", b"Thanks!\r\n" + (b"x" * 76 + b"\r\n") * 4000, 1)  # 300 KB in lines
    got = deliver(inbound.port, big, "support@acme.test")
    assert (got.stage, got.code) == ("data", 552)
    many = deliver(inbound.port, REPLY, [f"box{i}@acme.test" for i in range(101)])
    assert (many.stage, many.code) == ("rcpt", 452)
    assert stored(db) == 0


def test_nothing_is_acknowledged_that_was_not_committed(
    db: Database, workspace: WorkspaceKeys, inbound: InboundSmtpServer
) -> None:
    claim(db, workspace.id, "support@acme.test")

    def broken(_session: object, _inbound: object) -> None:
        raise RuntimeError("the inbox fell over")

    remove = on_inbound_email(broken)
    try:
        got = deliver(inbound.port, REPLY, "support@acme.test")
    finally:
        remove()
    assert (got.stage, got.code) == ("data", 451)  # the sender will try again
    with db.session() as s:  # all or nothing: not even the new customer was kept
        assert s.scalar(select(func.count()).select_from(Customer)) == 0
    assert stored(db) == 0
    assert deliver(inbound.port, REPLY, "support@acme.test").code == 250  # the retry
    assert stored(db) == 1


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.acme.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def test_starttls_when_given_a_certificate(
    db: Database, workspace: WorkspaceKeys, certificate: tuple[str, str]
) -> None:
    claim(db, workspace.id, "support@acme.test")
    server = InboundSmtpServer(db, port=0, tls=tls_context(*certificate)).start()
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as conn:
            conn.ehlo("mx.example.net")
            assert conn.has_extn("starttls")
            client = ssl.create_default_context()
            client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
            conn.starttls(context=client)
            conn.ehlo("mx.example.net")
            assert isinstance(conn.sock, ssl.SSLSocket)
            conn.sendmail("ivy@example.com", ["support@acme.test"], REPLY)
    finally:
        server.stop()
    assert stored(db) == 1


def test_several_serve_processes_share_the_port(db: Database, workspace: WorkspaceKeys) -> None:
    """`serve --workers N` starts one server per process, bound with SO_REUSEPORT."""
    claim(db, workspace.id, "support@acme.test")
    first = InboundSmtpServer(db, port=0, reuse_port=True).start()
    try:
        second = InboundSmtpServer(db, port=first.port, reuse_port=True).start()
        try:
            with pytest.raises(OSError):  # without the option the port is taken
                InboundSmtpServer(db, port=first.port).start()
            assert deliver(first.port, REPLY, "support@acme.test").code == 250
        finally:
            second.stop()
        assert deliver(first.port, REPLY, "support@acme.test").code == 250  # the first still serves
    finally:
        first.stop()
    assert stored(db) == 1  # the same message twice: stored once


def test_claims_are_set_through_the_workspace_api_and_never_shared(
    app_client: httpx.Client,
    db: Database,
    make_workspace,  # type: ignore[no-untyped-def]
) -> None:
    a, b = make_workspace("A"), make_workspace("B")

    def patch(ws: WorkspaceKeys, claims: object) -> httpx.Response:
        return app_client.patch(
            "/api/v1/workspace",
            headers={"Authorization": f"Bearer {ws.secret_key}"},
            json={"settings": {"inbound_email": claims}},
        )

    done = patch(a, ["Support@Shop-A.example.com", "@replies.shop-a.example.com"])
    assert done.status_code == 200, done.text
    assert done.json()["settings"]["inbound_email"] == ["support@shop-a.example.com", "replies.shop-a.example.com"]
    taken = patch(b, ["replies.shop-a.example.com"])
    assert taken.status_code == 409 and taken.json()["error"]["field"] == "settings.inbound_email"
    for bad in (["not an address"], ["x+tag@shop-b.example.com"], [""], "shop-b.example.com"):
        refused = patch(b, bad)
        assert refused.status_code == 400, (bad, refused.text)
    assert patch(b, ["help@shop-a.example.com"]).status_code == 200  # a mailbox A did not claim


def test_the_inbound_smtp_command_runs_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    env = {**os.environ, "SHOPKEEPER_DATABASE_URL": url}
    made = subprocess.run(
        [sys.executable, "-m", "shopkeeper", "workspace", "create", "Corner Shop"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    database = Database(url)
    try:
        with database.session(write=True) as s:
            from shopkeeper.auth.models import Workspace

            ws = s.scalars(select(Workspace)).one()
            ws.settings = {"inbound_email": ["corner-shop.example.com"]}
        port = free_port()
        with _command(env, "inbound-smtp", "--port", str(port)) as process:
            _wait_for(port, process)
            assert deliver(port, REPLY, "nobody@elsewhere.example.com").code == 550
            assert deliver(port, REPLY, "hello@corner-shop.example.com").code == 250
        assert stored(database) == 1
    finally:
        database.dispose()


class _command:
    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shopkeeper", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def __enter__(self) -> subprocess.Popen[bytes]:
        return self.process

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"inbound-smtp exited early:\n{out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("inbound-smtp did not start")
