"""Settings in the web UI: channels and providers, topics, sensitive data, frequency caps and quiet
hours, API keys, users and webhooks — each change made through the same services as the API,
audited, refused next to its field on bad input with nothing written, admin-only where the API
is, scoped to the workspace and guarded by the session's CSRF token."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from shopkeeper import clock
from shopkeeper.auth import service as auth_service
from shopkeeper.auth.models import ApiKey, AuditEntry, User, Workspace
from shopkeeper.auth.principal import Principal
from shopkeeper.channels.webhook import endpoints
from shopkeeper.consent import service as consent_service
from shopkeeper.consent.models import Topic
from shopkeeper.consent.policy import ContactPolicy
from shopkeeper.db.scoping import scoped
from shopkeeper.db.session import Database
from shopkeeper.errors import Conflict
from shopkeeper.messaging import provider_service
from shopkeeper.messaging.models import ChannelProvider, WebhookEndpoint
from shopkeeper.privacy import service as privacy_service
from shopkeeper.privacy.models import SensitiveAllowance, SensitiveTrait
from shopkeeper.web import session as web_session
from tests.conftest import WorkspaceKeys
from tests.web.helpers import csrf_of, login, make_user

OWNER = "owner@example.com"
SMTP: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 2525,
    "from_email": "shop@example.com",
    "username": "shop",
    "password": "s3cret-smtp-pass",
}


def sign_in(client: httpx.Client, db: Database, workspace_id: str, role: str = "owner") -> str:
    """Log in as a new user with this role; the session's CSRF token."""
    email = OWNER if role == "owner" else f"{role}@example.com"
    make_user(db, workspace_id, email=email, role=role)
    assert login(client, email=email).status_code == 303
    return csrf_of(client.get("/settings/topics").text)


def post(client: httpx.Client, path: str, csrf: str, **data: Any) -> httpx.Response:
    return client.post(path, data={"csrf": csrf, **data}, follow_redirects=False)


def audits(db: Database, workspace_id: str, action: str | None = None) -> list[AuditEntry]:
    with db.session() as s:
        query = scoped(AuditEntry, workspace_id).order_by(AuditEntry.created_at)
        if action:
            query = query.where(AuditEntry.action == action)
        return list(s.scalars(query))


def count(db: Database, model: type[Any], workspace_id: str) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace_id)) or 0)


def error_of(html: str, input_id: str) -> str:
    """The error shown under one input (its id + "-error"), which the input points to."""
    found = re.search(rf'<p class="field-error" id="{input_id}-error">([^<]*)</p>', html)
    assert found is not None, f"no error under #{input_id}"
    assert re.search(rf'id="{input_id}"[^>]*aria-invalid="true"', html), f"#{input_id} is not marked invalid"
    return unescape(found.group(1))


def test_settings_open_on_channels_with_a_side_navigation(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    sign_in(app_client, db, workspace.id)
    home = app_client.get("/settings", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/settings/channels"
    page = app_client.get("/settings/channels").text
    nav = page[page.index('aria-label="Settings"') :]
    for href in ("channels", "topics", "sensitive-data", "contact-policy", "api-keys", "users", "webhooks"):
        assert f'href="/settings/{href}"' in nav
    assert '<a href="/settings/channels" aria-current="page">' in page
    assert 'href="/static/app/settings.css"' in page
    # With no provider configured, each channel says what it sends through.
    assert "sends through the built-in <code>dev</code> provider" in page


def test_providers_per_channel_in_failover_order_with_secrets_never_shown_again(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    added = post(
        app_client,
        "/settings/channels/providers",
        csrf,
        provider="email:smtp",
        name="main-smtp",
        priority="0",
        settings=json.dumps(SMTP),
        rate_per_second="5",
        cost_per_unit="0.0008",
        currency="eur",
        enabled="1",
    )
    assert added.status_code == 303 and added.headers["location"] == "/settings/channels?done=provider-added"
    backup = post(app_client, "/settings/channels/providers", csrf, provider="email:dev", name="backup", priority="5")
    assert backup.status_code == 303
    with db.session() as s:
        rows = {r.name: r for r in s.scalars(scoped(ChannelProvider, workspace.id))}
    main = rows["main-smtp"]
    assert (main.rate_per_second, main.cost_per_unit, main.currency, main.enabled) == (5, 0.0008, "EUR", True)
    assert main.settings["password"] == SMTP["password"]
    assert rows["backup"].enabled is False  # its box was not ticked

    page = app_client.get("/settings/channels?done=provider-added").text
    assert "Provider added." in page
    assert "main-smtp" in page and "primary" in page and "5/s" in page and "0.0008 EUR" in page
    assert SMTP["password"] not in page and "password: ********" in page

    edit = app_client.get(f"/settings/channels/providers/{main.id}").text
    assert SMTP["password"] not in edit and provider_service.HIDDEN in edit
    # The form sends the redacted settings back: the stored secret stays; the rest changes.
    shown = {**SMTP, "password": provider_service.HIDDEN, "port": 2526}
    saved = post(
        app_client,
        f"/settings/channels/providers/{main.id}",
        csrf,
        priority="3",
        settings=json.dumps(shown),
        rate_per_second="",
        cost_per_unit="0.001",
        currency="EUR",
        enabled="1",
    )
    assert saved.status_code == 303
    with db.session() as s:
        row = s.get(ChannelProvider, main.id)
        assert row is not None
        assert row.settings["password"] == SMTP["password"] and row.settings["port"] == 2526
        assert (row.priority, row.rate_per_second, row.cost_per_unit) == (3, None, 0.001)

    # Enabled, the backup (priority 5) comes after main-smtp (priority 3).
    assert (
        post(app_client, f"/settings/channels/providers/{rows['backup'].id}/enabled", csrf, enabled="1").status_code
        == 303
    )
    page = app_client.get("/settings/channels").text
    assert page.index("main-smtp") < page.index("fallback 1") < page.index(">backup<")
    disabled = post(app_client, f"/settings/channels/providers/{main.id}/enabled", csrf)
    assert disabled.headers["location"].endswith("done=provider-disabled")
    with db.session() as s:
        assert s.get(ChannelProvider, main.id).enabled is False  # type: ignore[union-attr]

    removed = post(app_client, f"/settings/channels/providers/{rows['backup'].id}/delete", csrf)
    assert removed.status_code == 303 and count(db, ChannelProvider, workspace.id) == 1

    actions = [a.action for a in audits(db, workspace.id) if a.subject_type == "provider"]
    assert actions == ["provider.create"] * 2 + ["provider.update"] * 3 + ["provider.delete"]
    assert all(a.actor.startswith("user:") for a in audits(db, workspace.id, "provider.update"))
    assert SMTP["password"] not in json.dumps([a.details for a in audits(db, workspace.id)])


WRONG_PROVIDERS: list[tuple[dict[str, Any], str, str]] = [
    ({"settings": "{not json"}, "p-settings", "not valid JSON"),
    ({"settings": "[1, 2]"}, "p-settings", "a JSON object"),
    ({"settings": json.dumps({**SMTP, "from_email": None})}, "p-settings", "settings.from_email: required"),
    ({"settings": json.dumps({**SMTP, "port": "abc"})}, "p-settings", "invalid literal"),
    ({"name": "Main SMTP"}, "p-name", "lower-case letters"),
    ({"provider": "email:carrier-pigeon"}, "p-provider", "no email provider 'carrier-pigeon'"),
    ({"rate_per_second": "0"}, "p-rate", "greater than 0"),
    ({"cost_per_unit": "cheap"}, "p-cost", "valid number"),
    ({"currency": "euro"}, "p-currency", "three-letter"),
    ({"priority": "-1"}, "p-priority", "from 0"),
]


def test_a_wrong_provider_field_is_shown_next_to_it_and_nothing_is_written(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    before = len(audits(db, workspace.id))
    for fields, input_id, says in WRONG_PROVIDERS:
        form = {"provider": "email:smtp", "name": "main", "priority": "0", "settings": json.dumps(SMTP)} | fields
        refused = post(app_client, "/settings/channels/providers", csrf, **form)
        assert refused.status_code == 400, fields
        assert says in error_of(refused.text, input_id), fields
        assert f'value="{form["name"]}"' in refused.text  # what was typed is kept
    assert count(db, ChannelProvider, workspace.id) == 0 and len(audits(db, workspace.id)) == before


def test_a_second_provider_of_the_same_name_is_refused_at_the_name(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    assert post(app_client, "/settings/channels/providers", csrf, provider="sms:dev", name="main").status_code == 303
    again = post(app_client, "/settings/channels/providers", csrf, provider="sms:dev", name="main")
    assert again.status_code == 409 and "exists already" in error_of(again.text, "p-name")
    assert count(db, ChannelProvider, workspace.id) == 1


def test_web_chat_origins_and_identity_secret(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    bad = post(app_client, "/settings/channels/chat", csrf, allowed_origins="https://shop.example\nnot an origin")
    assert bad.status_code == 400 and "is not an origin" in error_of(bad.text, "c-origins")
    ok = post(
        app_client, "/settings/channels/chat", csrf, allowed_origins="https://Shop.example\n\nhttp://localhost:3000"
    )
    assert ok.status_code == 303
    rotated = post(app_client, "/settings/channels/chat/rotate", csrf)
    assert rotated.status_code == 303
    with db.session() as s:
        ws = s.get(Workspace, workspace.id)
        assert ws is not None
        assert ws.settings["chat"] == {
            "allowed_origins": ["https://shop.example", "http://localhost:3000"],
            "secret_version": 2,
        }
    assert [a.action for a in audits(db, workspace.id, "chat.settings")] == ["chat.settings"] * 2


def test_topics_with_purpose_lawful_basis_channels_and_double_opt_in(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id, role="marketer")  # marketers manage topics, as in the API
    added = post(
        app_client,
        "/settings/topics",
        csrf,
        key="newsletter",
        name="Newsletter",
        purpose="News about the shop, once a week",
        lawful_basis="consent",
        channels=["email", "sms"],
        double_opt_in="1",
    )
    assert added.status_code == 303
    with db.session() as s:
        topic = consent_service.topic_by_key(s, workspace.id, "newsletter")
        s.expunge(topic)
    assert (topic.lawful_basis, topic.channels, topic.double_opt_in) == ("consent", ["email", "sms"], True)
    page = app_client.get("/settings/topics").text
    assert "<code>newsletter</code>" in page and "News about the shop" in page and "email, sms" in page

    saved = post(
        app_client,
        f"/settings/topics/{topic.id}",
        csrf,
        name="Weekly news",
        purpose="News about the shop",
        channels="email",
    )
    assert saved.status_code == 303
    refused = post(app_client, f"/settings/topics/{topic.id}", csrf, name="x", purpose="", channels="email")
    assert refused.status_code == 400 and "say what the messages" in error_of(refused.text, "e-purpose")
    archived = post(app_client, f"/settings/topics/{topic.id}/archived", csrf, archived="1")
    assert archived.headers["location"].endswith("done=topic-archived")
    with db.session() as s:
        row = s.get(Topic, topic.id)
        assert row is not None
        assert (row.name, row.purpose, row.channels, row.double_opt_in) == (
            "Weekly news",
            "News about the shop",
            ["email"],
            False,
        )
        assert row.archived_at is not None
    assert [a.action for a in audits(db, workspace.id) if a.subject_type == "topic"] == [
        "topic.create",
        "topic.update",
        "topic.update",
    ]


WRONG_TOPICS: list[tuple[dict[str, Any], str, str, int]] = [
    ({"key": "Weekly News"}, "t-key", "lower-case letters", 400),
    ({"channels": []}, "t-channels", "tick at least one channel", 400),
    ({"channels": ["email", "fax"]}, "t-channels", "fax", 400),
    ({"purpose": ""}, "t-purpose", "say what the messages", 400),
    ({"lawful_basis": "because"}, "t-basis", "one of consent", 400),
    ({"key": "offers"}, "t-key", "exists already", 409),
]


def test_a_wrong_topic_is_refused_at_its_field(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    with db.session(write=True) as s:
        consent_service.create_topic(
            s,
            workspace.id,
            key="offers",
            name="",
            purpose="Deals",
            lawful_basis="consent",
            channels=["email"],
            now=clock.now(),
        )
    for fields, input_id, says, status in WRONG_TOPICS:
        form = {"key": "weekly", "purpose": "News", "lawful_basis": "consent", "channels": ["email"]} | fields
        refused = post(app_client, "/settings/topics", csrf, **form)
        assert refused.status_code == status, fields
        if input_id == "t-channels":  # a fieldset: its error follows the boxes
            found = re.search(r'class="field-error" id="t-channels-error">([^<]*)<', refused.text)
            assert found is not None and says in unescape(found.group(1)), fields
        else:
            assert says in error_of(refused.text, input_id), fields
    assert count(db, Topic, workspace.id) == 1 and audits(db, workspace.id, "topic.create") == []


def test_sensitive_traits_and_allowances_record_the_reason(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    assert (
        post(app_client, "/settings/sensitive-data/traits", csrf, name="Diagnosis", category="health").status_code
        == 303
    )
    again = post(app_client, "/settings/sensitive-data/traits", csrf, name="diagnosis", category="health")
    assert again.status_code == 409 and "already a sensitive trait" in error_of(again.text, "s-name")
    bad_name = post(app_client, "/settings/sensitive-data/traits", csrf, name="a.b", category="health")
    assert bad_name.status_code == 400 and "is not a trait name" in error_of(bad_name.text, "s-name")

    short = post(
        app_client, "/settings/sensitive-data/allowances", csrf, trait="diagnosis", usage="segment", reason="ok"
    )
    assert short.status_code == 400 and "at least 10 characters" in error_of(short.text, "a-reason")
    unknown = post(
        app_client,
        "/settings/sensitive-data/allowances",
        csrf,
        trait="shoe_size",
        usage="any",
        reason="A reason long enough",
    )
    assert unknown.status_code == 400 and "registry" in error_of(unknown.text, "a-trait")
    assert count(db, SensitiveAllowance, workspace.id) == 0

    reason = "Care reminders the customer asked for, reviewed by the DPO"
    allowed = post(
        app_client, "/settings/sensitive-data/allowances", csrf, trait="diagnosis", usage="segment", reason=reason
    )
    assert allowed.status_code == 303
    page = app_client.get("/settings/sensitive-data").text
    assert reason in page and "Owner" in page  # who allowed it, by name
    with db.session() as s:
        allowance = s.scalars(scoped(SensitiveAllowance, workspace.id)).one()
        s.expunge(allowance)
    assert allowance.reason == reason and allowance.actor.startswith("user:")
    (entry,) = audits(db, workspace.id, "sensitive_allowance.create")
    assert entry.details["reason"] == reason

    assert post(app_client, f"/settings/sensitive-data/allowances/{allowance.id}/revoke", csrf).status_code == 303
    page = app_client.get("/settings/sensitive-data").text
    assert "Revoked allowances (1)" in page and reason in page
    twice = post(app_client, f"/settings/sensitive-data/allowances/{allowance.id}/revoke", csrf)
    assert twice.status_code == 409

    with db.session() as s:
        trait = s.scalars(scoped(SensitiveTrait, workspace.id).where(SensitiveTrait.name == "diagnosis")).one()
        trait_id = trait.id
    assert post(app_client, f"/settings/sensitive-data/traits/{trait_id}/remove", csrf).status_code == 303
    assert [a.action for a in audits(db, workspace.id) if a.subject_type.startswith("sensitive")] == [
        "sensitive_trait.add",
        "sensitive_allowance.create",
        "sensitive_allowance.revoke",
        "sensitive_trait.remove",
    ]


def policy_form(**overrides: str) -> dict[str, str]:
    form = {
        "caps.all.day": "2",
        "caps.all.week": "5",
        "caps.sms.day": "1",
        "caps.email.week": "3",
        "quiet_hours_enabled": "1",
        "quiet_hours.start": "22:00",
        "quiet_hours.end": "07:30",
        "quiet_hours_transactional": "1",
        "default_timezone": "Europe/London",
    }
    form.update(overrides)
    return form


def test_frequency_caps_and_quiet_hours_are_the_workspaces_contact_policy(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    page = app_client.get("/settings/contact-policy").text
    assert 'name="caps.all.day" type="number"' in page and 'value="3"' in page  # the defaults

    saved = post(app_client, "/settings/contact-policy", csrf, **policy_form())
    assert saved.status_code == 303
    with db.session() as s:
        workspace_row = s.get(Workspace, workspace.id)
        assert workspace_row is not None
        policy = ContactPolicy.of(workspace_row)
    assert {k: (c.day, c.week) for k, c in policy.caps.items()} == {"all": (2, 5), "sms": (1, None), "email": (None, 3)}
    assert policy.quiet_hours is not None and (policy.quiet_hours.start, policy.quiet_hours.end) == ("22:00", "07:30")
    assert policy.quiet_hours_transactional and not policy.caps_transactional
    assert policy.default_timezone == "Europe/London"
    page = app_client.get("/settings/contact-policy").text
    assert 'value="07:30"' in page and 'value="Europe/London"' in page
    (entry,) = audits(db, workspace.id, "contact_policy.update")
    assert entry.details["caps"]["sms"] == {"day": 1, "week": None}

    no_quiet = post(app_client, "/settings/contact-policy", csrf, **policy_form(quiet_hours_enabled=""))
    assert no_quiet.status_code == 303
    with db.session() as s:
        assert ContactPolicy.of(s.get(Workspace, workspace.id)).quiet_hours is None  # type: ignore[arg-type]


WRONG_POLICIES: list[tuple[dict[str, Any], str, str]] = [
    ({"quiet_hours.start": "25:00"}, "q-start", "not a time of day"),
    ({"default_timezone": "Mars/Olympus"}, "q-zone", "not an IANA time zone"),
    ({"caps.sms.day": "-1"}, "cap-sms-day", "greater than or equal to 0"),
    ({"caps.all.week": "lots"}, "cap-all-week", "valid integer"),
]


def test_a_wrong_policy_field_is_refused_there_and_the_policy_is_unchanged(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    for overrides, input_id, says in WRONG_POLICIES:
        refused = post(app_client, "/settings/contact-policy", csrf, **policy_form(**overrides))
        assert refused.status_code == 400, overrides
        found = re.search(rf'id="{input_id}-error">([^<]*)<', refused.text)
        assert found is not None and says in found.group(1), overrides
        assert re.search(rf'id="{input_id}"[^>]*aria-invalid="true"', refused.text), overrides
    with db.session() as s:
        ws = s.get(Workspace, workspace.id)
        assert ws is not None and "contact_policy" not in ws.settings
    assert audits(db, workspace.id, "contact_policy.update") == []


def test_an_api_key_is_shown_once_listed_by_prefix_and_revoked(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    created = post(app_client, "/settings/api-keys", csrf, name="order service", kind="secret")
    assert created.status_code == 201
    plain = re.search(r'value="(sk_[A-Za-z0-9_-]+)"', created.text)
    assert plain is not None, "the new key is on the page"
    key = plain.group(1)
    assert "shown this once" in created.text
    assert app_client.get("/api/v1/workspace", headers={"Authorization": f"Bearer {key}"}).status_code == 200

    listed = app_client.get("/settings/api-keys").text
    assert key not in listed and f"<code>{key[:10]}…</code>" in listed and "order service" in listed
    with db.session() as s:
        row = s.scalars(scoped(ApiKey, workspace.id).where(ApiKey.name == "order service")).one()
        s.expunge(row)
    assert key not in (row.key_hash, row.prefix)

    bad = post(app_client, "/settings/api-keys", csrf, name="x", kind="admin")
    assert bad.status_code == 400 and "secret or write" in error_of(bad.text, "k-kind")
    assert count(db, ApiKey, workspace.id) == 3  # the workspace's two and this one

    revoked = post(app_client, f"/settings/api-keys/{row.id}/revoke", csrf)
    assert revoked.status_code == 303
    assert app_client.get("/api/v1/workspace", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert "revoked" in app_client.get("/settings/api-keys").text
    assert [a.action for a in audits(db, workspace.id) if a.subject_type == "api_key"] == [
        "api_key.create",
        "api_key.revoke",
    ]


def test_users_are_added_with_a_role_and_password_changed_and_disabled(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    added = post(
        app_client,
        "/settings/users",
        csrf,
        email=" Ann@Example.com ",
        name="Ann",
        role="agent",
        password="a long password",
    )
    assert added.status_code == 303
    with db.session() as s:
        ann = s.scalars(scoped(User, workspace.id).where(User.email == "ann@example.com")).one()
        ann_id = ann.id
        assert ann.role == "agent" and len(web_session.authenticate(s, "ann@example.com", "a long password", None)) == 1
    assert "ann@example.com" in app_client.get("/settings/users").text

    assert post(app_client, f"/settings/users/{ann_id}/role", csrf, role="marketer").status_code == 303
    assert post(app_client, f"/settings/users/{ann_id}/disabled", csrf, disabled="1").status_code == 303
    with db.session() as s:
        changed = s.get(User, ann_id)
        assert changed is not None and (changed.role, changed.disabled) == ("marketer", True)
        assert web_session.authenticate(s, "ann@example.com", "a long password", None) == []
    assert post(app_client, f"/settings/users/{ann_id}/disabled", csrf).headers["location"].endswith("user-enabled")
    details = [a.details for a in audits(db, workspace.id) if a.subject_type == "user" and a.action != "web.login"]
    assert details == [
        {"email": "ann@example.com", "role": "agent"},
        {"role": "marketer"},
        {"disabled": True},
        {"disabled": False},
    ]


WRONG_USERS: list[tuple[dict[str, Any], str, str, int]] = [
    ({"email": "not an address"}, "u-email", "not a valid address", 400),
    ({"email": OWNER}, "u-email", "exists in this workspace", 409),
    ({"password": "short"}, "u-password", "at least 10 characters", 400),
    ({"password": ""}, "u-password", "needed to log in", 400),
    ({"role": "superuser"}, "u-role", "one of owner", 400),
]


def test_a_wrong_user_is_refused_at_its_field(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    for fields, input_id, says, status in WRONG_USERS:
        form = {"email": "new@example.com", "role": "agent", "password": "a long password"} | fields
        refused = post(app_client, "/settings/users", csrf, **form)
        assert refused.status_code == status and says in error_of(refused.text, input_id), fields
        assert 'value="a long password"' not in refused.text  # a password is never put back in the page
    assert count(db, User, workspace.id) == 1 and audits(db, workspace.id, "user.create") == []


def test_the_last_owner_stays_an_owner_and_only_owners_make_owners(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    with db.session() as s:
        me = s.scalars(scoped(User, workspace.id)).one()
        my_id = me.id
    demoted = post(app_client, f"/settings/users/{my_id}/role", csrf, role="admin")
    assert demoted.status_code == 409
    assert re.search(rf'id="row-error-{my_id}" role="alert">[^<]*last owner', demoted.text)
    # With a second owner, the first may step down.
    second = post(app_client, "/settings/users", csrf, email="co@example.com", role="owner", password="a long password")
    assert second.status_code == 303
    assert post(app_client, f"/settings/users/{my_id}/role", csrf, role="admin").status_code == 303
    with db.session() as s:
        assert s.get(User, my_id).role == "admin"  # type: ignore[union-attr]
        co = s.scalars(scoped(User, workspace.id).where(User.email == "co@example.com")).one()
        co_id = co.id
    # Now an admin: cannot make owners, nor change or disable one.
    assert (
        post(
            app_client, "/settings/users", csrf, email="x@example.com", role="owner", password="a long password"
        ).status_code
        == 403
    )
    assert post(app_client, f"/settings/users/{co_id}/role", csrf, role="viewer").status_code == 403
    assert post(app_client, f"/settings/users/{co_id}/disabled", csrf, disabled="1").status_code == 403
    assert post(app_client, f"/settings/users/{my_id}/role", csrf, role="owner").status_code == 403
    with db.session() as s:
        assert {u.email: (u.role, u.disabled) for u in s.scalars(scoped(User, workspace.id))} == {
            OWNER: ("admin", False),
            "co@example.com": ("owner", False),
        }


def test_the_api_keeps_the_last_owner_too(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    owner_id = make_user(db, workspace.id, email=OWNER, role="owner")
    auth = {"Authorization": f"Bearer {workspace.secret_key}"}
    # A secret key acts as an admin: it cannot touch an owner or make one.
    assert app_client.patch(f"/api/v1/users/{owner_id}", headers=auth, json={"role": "viewer"}).status_code == 403
    made = app_client.post("/api/v1/users", headers=auth, json={"email": "o2@example.com", "role": "owner"})
    assert made.status_code == 403
    with db.session(write=True) as s:
        principal = Principal(workspace.id, "test", "owner")
        with pytest.raises(Conflict):
            auth_service.update_user(s, principal, owner_id, {"disabled": True})


def test_webhook_endpoints_with_their_secret_shown_once(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    bad = post(app_client, "/settings/webhooks", csrf, url="http://127.0.0.1/hook", events="*", enabled="1")
    assert bad.status_code == 400 and error_of(bad.text, "w-url")
    no_events = post(app_client, "/settings/webhooks", csrf, url="https://hooks.example.com/shop", enabled="1")
    assert no_events.status_code == 400 and 'id="w-events-error"' in no_events.text
    assert count(db, WebhookEndpoint, workspace.id) == 0

    made = post(app_client, "/settings/webhooks", csrf, url="https://hooks.example.com/shop", events="*", enabled="1")
    assert made.status_code == 201
    secret = re.search(r'value="(whsec_[0-9a-f]+)"', made.text)
    assert secret is not None and "shown this once" in made.text
    listed = app_client.get("/settings/webhooks").text
    assert secret.group(1) not in listed and endpoints.secret_hint(secret.group(1)) in listed
    with db.session() as s:
        row = s.scalars(scoped(WebhookEndpoint, workspace.id)).one()
        endpoint_id = row.id
    rotated = post(app_client, f"/settings/webhooks/{endpoint_id}/rotate", csrf)
    fresh = re.search(r'value="(whsec_[0-9a-f]+)"', rotated.text)
    assert fresh is not None and fresh.group(1) != secret.group(1)
    assert post(app_client, f"/settings/webhooks/{endpoint_id}/enabled", csrf).status_code == 303
    with db.session() as s:
        assert s.get(WebhookEndpoint, endpoint_id).enabled is False  # type: ignore[union-attr]
    assert post(app_client, f"/settings/webhooks/{endpoint_id}/delete", csrf).status_code == 303
    assert count(db, WebhookEndpoint, workspace.id) == 0
    assert [a.action for a in audits(db, workspace.id) if a.subject_type == "webhook_endpoint"] == [
        "webhook_endpoint.create",
        "webhook_endpoint.rotate_secret",
        "webhook_endpoint.update",
        "webhook_endpoint.delete",
    ]


# -- roles, isolation, CSRF -------------------------------------------------------------------
def seed(db: Database, workspace_id: str) -> dict[str, str]:
    """One of everything in a workspace, made through the services; their ids."""
    now = clock.now()
    principal = Principal(workspace_id, "test", "owner")
    with db.session(write=True) as s:
        provider = provider_service.create_provider(
            s, workspace_id, {"channel": "email", "name": "main", "type": "dev", "settings": {}}, now
        )
        key, _ = auth_service.create_api_key(s, workspace_id, "secret", "ci", now)
        user = auth_service.create_user(s, workspace_id, email="seeded@example.com", role="agent", now=now)
        topic = consent_service.create_topic(
            s, workspace_id, key="news", name="", purpose="News", lawful_basis="consent", channels=["email"], now=now
        )
        trait = privacy_service.add_sensitive_trait(s, principal, name="diagnosis", category="health", now=now)
        allowance = privacy_service.allow_use(
            s, principal, trait="diagnosis", usage="segment", reason="A reason long enough", now=now
        )
        endpoint = endpoints.create_endpoint(
            s, workspace_id, url="https://hooks.example.com/x", events=["*"], enabled=True, allow_private=False, now=now
        )
        return {
            "provider": provider.id,
            "key": key.id,
            "user": user.id,
            "topic": topic.id,
            "trait": trait.id,
            "allowance": allowance.id,
            "endpoint": endpoint.id,
        }


ADMIN_CHANGES = [
    ("/settings/channels/providers", {"provider": "email:dev", "name": "new"}),
    ("/settings/channels/providers/{provider}", {"priority": "1", "settings": "{}", "enabled": "1"}),
    ("/settings/channels/providers/{provider}/enabled", {}),
    ("/settings/channels/providers/{provider}/delete", {}),
    ("/settings/channels/chat", {"allowed_origins": "https://shop.example"}),
    ("/settings/channels/chat/rotate", {}),
    ("/settings/sensitive-data/traits", {"name": "religion_x", "category": "belief"}),
    ("/settings/sensitive-data/traits/{trait}/remove", {}),
    (
        "/settings/sensitive-data/allowances",
        {"trait": "diagnosis", "usage": "template", "reason": "A reason long enough"},
    ),
    ("/settings/sensitive-data/allowances/{allowance}/revoke", {}),
    ("/settings/contact-policy", policy_form()),
    ("/settings/api-keys", {"kind": "secret", "name": "mine"}),
    ("/settings/api-keys/{key}/revoke", {}),
    ("/settings/users", {"email": "new@example.com", "role": "agent", "password": "a long password"}),
    ("/settings/users/{user}/role", {"role": "admin"}),
    ("/settings/users/{user}/disabled", {"disabled": "1"}),
    ("/settings/webhooks", {"url": "https://hooks.example.com/y", "events": "*"}),
    ("/settings/webhooks/{endpoint}/enabled", {}),
    ("/settings/webhooks/{endpoint}/rotate", {}),
    ("/settings/webhooks/{endpoint}/delete", {}),
]
MARKETER_CHANGES = [
    ("/settings/topics", {"key": "deals", "purpose": "Deals", "lawful_basis": "consent", "channels": "email"}),
    ("/settings/topics/{topic}", {"name": "x", "purpose": "News", "channels": "email"}),
    ("/settings/topics/{topic}/archived", {"archived": "1"}),
]


def snapshot(db: Database, workspace_id: str) -> tuple[Any, ...]:
    with db.session() as s:
        ws = s.get(Workspace, workspace_id)
        assert ws is not None
        rows: list[Any] = []
        for model in (ChannelProvider, ApiKey, User, Topic, SensitiveTrait, SensitiveAllowance, WebhookEndpoint):
            for row in s.scalars(scoped(model, workspace_id)):
                rows.append(sorted((k, repr(v)) for k, v in vars(row).items() if not k.startswith("_")))
        return (json.dumps(ws.settings, sort_keys=True), sorted(map(repr, rows)), len(audits(db, workspace_id)))


@pytest.mark.parametrize("role", ["marketer", "agent", "viewer"])
def test_only_admins_change_settings_the_others_read_or_get_403(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, role: str
) -> None:
    ids = seed(db, workspace.id)
    csrf = sign_in(app_client, db, workspace.id, role=role)
    before = snapshot(db, workspace.id)
    for path in ("/settings/channels", "/settings/topics", "/settings/sensitive-data", "/settings/contact-policy"):
        page = app_client.get(path)
        # Agents rank with marketers (auth.principal.ROLE_RANK): both manage topics, as in the API.
        may_change = role != "viewer" and path == "/settings/topics"
        assert page.status_code == 200 and ("changing them needs the" in page.text) is not may_change, path
    assert app_client.get(f"/settings/channels/providers/{ids['provider']}").status_code == 200
    assert app_client.get("/settings/users").status_code == 200
    assert app_client.get("/settings/webhooks").status_code == 200
    assert 'action="/settings/channels/providers"' not in app_client.get("/settings/channels").text
    keys = app_client.get("/settings/api-keys")  # the API lists keys to admins only
    assert keys.status_code == 403 and "needs the admin role" in keys.text
    changes = ADMIN_CHANGES + (MARKETER_CHANGES if role == "viewer" else [])
    for path, data in changes:
        refused = post(app_client, path.format(**ids), csrf, **data)
        assert refused.status_code == 403, path
    assert snapshot(db, workspace.id) == before


def test_another_workspaces_ids_are_not_found(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, make_workspace: Any
) -> None:
    other = make_workspace("Other")
    theirs = seed(db, other.id)
    csrf = sign_in(app_client, db, workspace.id)
    before = snapshot(db, other.id)
    assert app_client.get(f"/settings/channels/providers/{theirs['provider']}").status_code == 404
    assert app_client.get(f"/settings/topics/{theirs['topic']}").status_code == 404
    for path, data in ADMIN_CHANGES + MARKETER_CHANGES:
        if "{" not in path:
            continue
        refused = post(app_client, path.format(**theirs), csrf, **data)
        assert refused.status_code == 404, path
        assert "Not found" in refused.text
    assert snapshot(db, other.id) == before
    # Nor are they listed here.
    for path in ("/settings/channels", "/settings/api-keys", "/settings/users", "/settings/webhooks"):
        page = app_client.get(path).text
        assert not any(value in page for value in theirs.values()), path


def test_a_change_without_the_sessions_csrf_token_is_refused(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    ids = seed(db, workspace.id)
    sign_in(app_client, db, workspace.id)
    before = snapshot(db, workspace.id)
    for path, data in ADMIN_CHANGES + MARKETER_CHANGES:
        missing = app_client.post(path.format(**ids), data=data, follow_redirects=False)
        forged = app_client.post(path.format(**ids), data={"csrf": "forged", **data}, follow_redirects=False)
        assert missing.status_code == forged.status_code == 403, path
    assert snapshot(db, workspace.id) == before


def test_settings_need_a_session(app_client: httpx.Client) -> None:
    page = app_client.get("/settings/api-keys", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=/settings/api-keys")
    assert app_client.post("/settings/api-keys", data={"kind": "secret"}).status_code == 401


def test_a_nul_character_in_a_form_is_refused_before_it_reaches_the_store(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    csrf = sign_in(app_client, db, workspace.id)
    refused = app_client.post(
        "/settings/topics",
        content=f"csrf={csrf}&key=news&purpose=a%00b&lawful_basis=consent&channels=email",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 400 and "NUL" in refused.text
    assert count(db, Topic, workspace.id) == 0
