"""SPEC §4/§12: signed, expiring, per-customer links — and every way one can be wrong."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import delete

from shopkeeper.consent.tokens import (
    LinkCustomerGone,
    LinkExpired,
    LinkInvalid,
    LinkWrongPurpose,
    make_token,
    preferences_url,
    unsubscribe_headers,
    verify,
)
from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, workspace_row

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def alice(db: Database, workspace: WorkspaceKeys) -> str:
    return make_customer(db, workspace.id, "alice", email="alice@example.com")


def check(db: Database, token: str, purpose: str = "preferences", when: datetime = NOW, **kw: bool):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return verify(s, token, purpose, when, **kw)  # type: ignore[arg-type]


def test_a_token_names_its_workspace_customer_purpose_and_data(
    db: Database, workspace: WorkspaceKeys, alice: str
) -> None:
    ws = workspace_row(db, workspace.id)
    token = make_token(ws, alice, "unsubscribe", NOW, data={"ch": "sms", "t": "offers"})
    link = check(db, token, "unsubscribe")
    assert (link.workspace.id, link.customer.id, link.purpose) == (workspace.id, alice, "unsubscribe")
    assert (link.channel, link.topic) == ("sms", "offers")
    assert not link.expired


@pytest.mark.parametrize(("purpose", "days"), [("preferences", 60), ("unsubscribe", 60), ("confirm", 7)])
def test_links_expire_after_their_default_lifetime(
    db: Database, workspace: WorkspaceKeys, alice: str, purpose: str, days: int
) -> None:
    token = make_token(workspace_row(db, workspace.id), alice, purpose, NOW)  # type: ignore[arg-type]
    almost = NOW + timedelta(days=days) - timedelta(seconds=1)
    assert check(db, token, purpose, almost).customer.id == alice
    with pytest.raises(LinkExpired) as caught:
        check(db, token, purpose, NOW + timedelta(days=days))
    assert caught.value.status == 410
    late = check(db, token, purpose, NOW + timedelta(days=days + 1), allow_expired=True)
    assert late.expired and late.customer.id == alice


def test_a_lifetime_can_be_chosen(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    token = make_token(workspace_row(db, workspace.id), alice, "confirm", NOW, lifetime=timedelta(hours=1))
    check(db, token, "confirm", NOW + timedelta(minutes=59))
    with pytest.raises(LinkExpired):
        check(db, token, "confirm", NOW + timedelta(minutes=61))


def test_a_tampered_token_is_refused(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    token = make_token(workspace_row(db, workspace.id), alice, "preferences", NOW)
    # Change one character of the payload, then of the signature.
    body, signature = token.rsplit(".", 1)
    for forged in (
        body[:-3] + ("A" if body[-3] != "A" else "B") + body[-2:] + "." + signature,
        # (not the last character: its low bits are base64 padding, and a change there can
        # decode to the same signature)
        body + "." + signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:],
        token + "x",
        "garbage",
        "",
        "ws\x00x." + token.split(".", 1)[1],  # PostgreSQL refuses NUL in text: never ask it
        token.split(".", 1)[0] + ".\udcff\x00",
        "ws_nothing." + token.split(".", 1)[1],
    ):
        with pytest.raises(LinkInvalid) as caught:
            check(db, forged)
        assert caught.value.status == 400


def check_workspace_of(db: Database, customer_id: str) -> str:
    with db.session() as s:
        customer = s.get(Customer, customer_id)
        assert customer is not None
        return customer.workspace_id


def test_a_token_for_another_purpose_is_refused(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    token = make_token(workspace_row(db, workspace.id), alice, "unsubscribe", NOW, data={"ch": "email"})
    with pytest.raises(LinkWrongPurpose) as caught:
        check(db, token, "preferences")
    assert caught.value.status == 400
    with pytest.raises(LinkWrongPurpose):
        check(db, token, "confirm")


def test_an_expired_forgery_says_forged_not_expired(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    token = make_token(workspace_row(db, workspace.id), alice, "preferences", NOW - timedelta(days=400))
    with pytest.raises(LinkInvalid):
        check(db, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))


def test_an_erased_customer_has_no_link_any_more(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    token = make_token(workspace_row(db, workspace.id), alice, "preferences", NOW)
    with db.session(write=True) as s:
        s.execute(delete(Identity).where(Identity.customer_id == alice))
        s.execute(delete(Customer).where(Customer.id == alice))
    with pytest.raises(LinkCustomerGone) as caught:
        check(db, token)
    assert caught.value.status == 410


def test_a_merged_away_customer_speaks_for_the_survivor(db: Database, workspace: WorkspaceKeys) -> None:
    older = make_customer(db, workspace.id, "older", email="older@example.com")
    newer = make_customer(db, workspace.id, "newer")
    token = make_token(workspace_row(db, workspace.id), newer, "preferences", NOW)
    with db.session(write=True) as s:  # what a merge leaves behind: the id points at its survivor
        row = s.get(Customer, newer)
        assert row is not None
        row.merged_into = older
    link = check(db, token)
    assert link.customer.id == older and set(link.customer_ids) == {older, newer}


def test_a_token_of_workspace_a_never_reaches_a_customer_of_workspace_b(
    db: Database,
    make_workspace: Callable[[str], WorkspaceKeys],
    alice: str,
) -> None:
    a = workspace_row(db, make_workspace("A").id)
    b_id = check_workspace_of(db, alice)
    # A signs a token naming B's customer: A's secret is genuine, but the customer is not A's.
    with pytest.raises(LinkCustomerGone):
        check(db, make_token(a, alice, "preferences", NOW))
    # A's signature under B's name does not verify.
    with pytest.raises(LinkInvalid):
        check(db, f"{b_id}.{make_token(a, alice, 'preferences', NOW).split('.', 1)[1]}")


def test_urls_and_rfc_8058_headers(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    ws = workspace_row(db, workspace.id)
    url = preferences_url(ws, alice, NOW, base_url="https://shop.example/")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "shop.example")
    assert parts.path.startswith("/preferences/")
    assert check(db, parts.path.rsplit("/", 1)[1]).customer.id == alice

    headers = unsubscribe_headers(
        ws, alice, NOW, topic="offers", base_url="https://shop.example", mailto="unsubscribe@shop.example"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = headers["List-Unsubscribe"].split(", ")
    assert https.startswith("<https://shop.example/unsubscribe/") and https.endswith(">")
    assert mailto.startswith("<mailto:unsubscribe@shop.example?subject=")
    link = check(db, https[1:-1].rsplit("/", 1)[1], "unsubscribe")
    assert (link.channel, link.topic) == ("email", "offers")
    only_https = unsubscribe_headers(ws, alice, NOW, base_url="https://shop.example")
    assert "mailto:" not in only_https["List-Unsubscribe"]
