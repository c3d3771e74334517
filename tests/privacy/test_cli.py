"""The `shopkeeper suppression` and `shopkeeper customer` commands, run for real in a subprocess:
they work, they audit, and bad input ends with one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from shopkeeper.auth.models import AuditEntry, Workspace
from shopkeeper.db.session import Database
from tests.helpers import ingest, message
from tests.privacy.people import customer_of
from tests.test_cli import shopkeeper


def one_line_error(out: object, *words: str) -> None:
    assert getattr(out, "returncode", None) == 2, out
    stderr: str = out.stderr  # type: ignore[attr-defined]
    assert stderr.strip().count("\n") == 0 and "Traceback" not in stderr, stderr
    for word in words:
        assert word in stderr, stderr


@pytest.fixture
def shop(tmp_path: Path) -> tuple[str, str]:
    """A SQLite workspace `cli-shop` holding one customer with an email, a phone and events."""
    url = f"sqlite:///{tmp_path}/cli.db"
    assert shopkeeper(url, "workspace", "create", "CLI Shop").returncode == 0
    db = Database(url)
    try:
        with db.session() as s:
            ws = s.scalar(select(Workspace.id).where(Workspace.slug == "cli-shop"))
        assert ws is not None
        ingest(
            db,
            ws,
            [
                message(
                    "identify", userId="cli-user", traits={"email": "cli.person@example.com", "phone": "+14155550142"}
                ),
                *[message("track", userId="cli-user", event=f"Step {i}") for i in range(5)],
            ],
        )
        customer = customer_of(db, ws, "user_id", "cli-user")
        assert customer is not None
    finally:
        db.dispose()
    return url, customer


def test_suppression_add_list_remove(shop: tuple[str, str]) -> None:
    url, _ = shop
    added = shopkeeper(
        url,
        "suppression",
        "add",
        "Bounced@Example.com",
        "--workspace",
        "cli-shop",
        "--channel",
        "email",
        "--reason",
        "hard_bounce",
        "--note",
        "mailbox gone",
    )
    assert added.returncode == 0, added.stderr
    assert "suppressed email bounced@example.com" in added.stdout and "hard_bounce" in added.stdout
    again = shopkeeper(
        url, "suppression", "add", "bounced@example.com", "--workspace", "cli-shop", "--channel", "email"
    )
    assert again.returncode == 0 and "already suppressed" in again.stdout

    listed = shopkeeper(url, "suppression", "list", "--workspace", "cli-shop")
    assert listed.returncode == 0 and "bounced@example.com" in listed.stdout and "hard_bounce" in listed.stdout
    looked_up = shopkeeper(url, "suppression", "list", "--workspace", "cli-shop", "--address", "BOUNCED@example.com")
    assert looked_up.stdout.count("\n") == 1
    none = shopkeeper(url, "suppression", "list", "--workspace", "cli-shop", "--reason", "stop")
    assert none.returncode == 0 and none.stdout == "" and "no suppression" in none.stderr

    removed = shopkeeper(
        url, "suppression", "remove", "bounced@example.com", "--workspace", "cli-shop", "--channel", "email"
    )
    assert removed.returncode == 0 and "lifted sup_" in removed.stdout, removed.stderr
    db = Database(url)
    try:
        with db.session() as s:
            actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.actor == "cli")))
    finally:
        db.dispose()
    assert actions.count("suppression.add") == 1 and actions.count("suppression.remove") == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["add", "a@example.com", "--channel", "fax"], ["channel", "fax"]),
        (["add", "not-an-email", "--channel", "email"], ["address"]),
        (["add", "a@example.com", "--channel", "email", "--reason", "erased"], ["erased", "erasing"]),
        (["remove", "a@example.com"], ["--channel"]),
        (["remove", "sup_0123456789abcdef0123456789abcdef"], ["not found"]),
        (["remove", "a@example.com", "--channel", "email"], ["not suppressed"]),
        (["list", "--channel", "fax"], ["channel"]),
        (["list", "--reason", "bored"], ["reason"]),
    ],
)
def test_suppression_bad_input_is_one_line_and_exit_2(shop: tuple[str, str], args: list[str], words: list[str]) -> None:
    url, _ = shop
    one_line_error(shopkeeper(url, "suppression", *args, "--workspace", "cli-shop"), *words)


def test_unknown_workspace(shop: tuple[str, str]) -> None:
    url, customer = shop
    one_line_error(shopkeeper(url, "suppression", "list", "--workspace", "nowhere"), "no workspace")
    one_line_error(shopkeeper(url, "customer", "export", customer, "--workspace", "nowhere"), "no workspace")


def test_customer_export_to_a_file_and_to_stdout(shop: tuple[str, str], tmp_path: Path) -> None:
    url, customer = shop
    target = tmp_path / "export.json"
    out = shopkeeper(url, "customer", "export", customer, "--workspace", "cli-shop", "--out", str(target))
    assert out.returncode == 0, out.stderr
    doc = json.loads(target.read_text())
    assert doc["customer"]["id"] == customer and len(doc["events"]) == 6
    assert {i["value"] for i in doc["identities"]} == {"cli-user", "cli.person@example.com", "+14155550142"}
    assert not list(tmp_path.glob(".*.partial"))
    piped = shopkeeper(url, "customer", "export", customer, "--workspace", "cli-shop")
    assert piped.returncode == 0 and json.loads(piped.stdout)["customer"]["id"] == customer


def test_customer_export_errors(shop: tuple[str, str], tmp_path: Path) -> None:
    url, customer = shop
    one_line_error(shopkeeper(url, "customer", "export", "cus_nobody", "--workspace", "cli-shop"), "not found")
    missing_dir = tmp_path / "no" / "such" / "dir.json"
    out = shopkeeper(url, "customer", "export", customer, "--workspace", "cli-shop", "--out", str(missing_dir))
    one_line_error(out, "--out", "does not exist")


def test_customer_erase_needs_yes_then_erases_and_keeps_the_addresses_suppressed(shop: tuple[str, str]) -> None:
    url, customer = shop
    one_line_error(shopkeeper(url, "customer", "erase", customer, "--workspace", "cli-shop"), "--yes")
    erased = shopkeeper(url, "customer", "erase", customer, "--workspace", "cli-shop", "--yes")
    assert erased.returncode == 0, erased.stderr
    assert f"erased {customer}" in erased.stdout and "6 events" in erased.stdout
    assert "4 address suppression(s)" in erased.stdout  # the email, and the phone on sms/whatsapp/voice
    listed = shopkeeper(url, "suppression", "list", "--workspace", "cli-shop", "--address", "cli.person@example.com")
    assert "erased" in listed.stdout and "cli.person@example.com" not in listed.stdout
    one_line_error(shopkeeper(url, "customer", "erase", customer, "--workspace", "cli-shop", "--yes"), "not found")
    one_line_error(shopkeeper(url, "customer", "export", customer, "--workspace", "cli-shop"), "not found")
