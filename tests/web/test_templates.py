"""SPEC §9 "templates (preview with a real customer)" in the web UI: the list, the editor whose
save makes a new version (a Liquid error is shown at its field and nothing is written), and the
live preview of unsaved content for a chosen customer, per channel."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Template, TemplateVersion
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic
from tests.helpers import ingest, message
from tests.messaging.factories import WELCOME, make_template
from tests.web.helpers import csrf_of, login, make_user


def versions_of(db: Database, template_id: str) -> list[tuple[int, dict[str, object]]]:
    with db.session() as s:
        rows = s.execute(
            select(TemplateVersion.version, TemplateVersion.content)
            .where(TemplateVersion.template_id == template_id)
            .order_by(TemplateVersion.version)
        )
        return [(v, c) for v, c in rows]


def form_of(content: dict[str, dict[str, str]], csrf: str, **fields: str) -> dict[str, str]:
    data = {"csrf": csrf, "name": "Welcome", "kind": "transactional", "topic": "", **fields}
    for channel, parts in content.items():
        for part, value in parts.items():
            data[f"content.{channel}.{part}"] = value
    return data


def test_the_list_and_the_editor_show_this_workspaces_templates(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id)
    welcome = make_template(db, workspace.id)
    make_customer(db, workspace.id, "ann", email="ann@example.com")
    login(app_client)
    listing = app_client.get("/templates")
    assert listing.status_code == 200
    assert f'href="/templates/{welcome}"' in listing.text and "email, sms" in listing.text
    editor = app_client.get(f"/templates/{welcome}")
    assert editor.status_code == 200
    assert 'name="content.email.subject"' in editor.text and 'name="content.webhook.body"' in editor.text
    assert "Welcome, {{ customer.first_name | default: &#39;friend&#39; }}" in editor.text
    assert '<label for="f-content-sms-text">' in editor.text  # every field has its label
    # The preview is there from the start, for the newest customer.
    assert "For <strong>ann@example.com</strong> on Email" in editor.text


def test_saving_new_content_makes_a_new_version(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id)
    welcome = make_template(db, workspace.id)
    login(app_client)
    csrf = csrf_of(app_client.get(f"/templates/{welcome}").text)
    changed = {**WELCOME, "sms": {"text": "Hi {{ customer.first_name }}:\r\n20% off today"}}
    r = app_client.post(f"/templates/{welcome}", data=form_of(changed, csrf), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/templates/{welcome}?saved=2"
    assert "Saved as version 2." in app_client.get(r.headers["location"]).text
    versions = versions_of(db, welcome)
    assert [v for v, _ in versions] == [1, 2]
    assert versions[1][1]["sms"] == {"text": "Hi {{ customer.first_name }}:\n20% off today"}  # LF, as typed

    # The same content again (as the browser sends it, CRLF) is no new version.
    again = app_client.post(f"/templates/{welcome}", data=form_of(changed, csrf), follow_redirects=False)
    assert again.headers["location"] == f"/templates/{welcome}?unchanged=1"
    assert len(versions_of(db, welcome)) == 2

    # An old version opens in the editor, to start again from it.
    old = app_client.get(f"/templates/{welcome}?version=1")
    assert "10% off today" in old.text and "saving it makes it version 3" in old.text


def test_a_broken_template_is_shown_at_its_field_and_nothing_is_written(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id)
    welcome = make_template(db, workspace.id)
    login(app_client)
    csrf = csrf_of(app_client.get(f"/templates/{welcome}").text)
    broken = {**WELCOME, "sms": {"text": "Hi {{ customer.first_name | shout }}"}}
    r = app_client.post(f"/templates/{welcome}", data=form_of(broken, csrf, name="Renamed"))
    assert r.status_code == 400
    assert "Not saved — nothing was written" in r.text
    field = r.text[r.text.index('id="f-content-sms-text"') - 200 :]
    assert 'aria-invalid="true" aria-describedby="err-content-sms-text"' in field
    assert re.search(r'id="err-content-sms-text">content\.sms\.text: unknown filter &#39;shout&#39; at line 1', r.text)
    assert "{{ customer.first_name | shout }}" in r.text  # what was typed is kept
    assert len(versions_of(db, welcome)) == 1
    with db.session() as s:
        template = s.get(Template, welcome)
        assert template is not None and template.name == "Welcome"  # no part of the change was saved

    # A marketing template needs a topic: said at the topic field.
    r = app_client.post(f"/templates/{welcome}", data=form_of(WELCOME, csrf, kind="marketing"))
    assert r.status_code == 400 and 'id="err-topic"' in r.text
    # Every channel left empty: said at the content.
    r = app_client.post(f"/templates/{welcome}", data=form_of({}, csrf))
    assert r.status_code == 400 and 'id="err-content"' in r.text
    assert len(versions_of(db, welcome)) == 1


def test_a_new_template_is_created_from_the_editor(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id)
    make_topic(db, workspace.id, "offers")
    make_template(db, workspace.id, "welcome")
    login(app_client)
    csrf = csrf_of(app_client.get("/templates/new").text)
    content = {"sms": {"text": "Sale! {{ unsubscribe_url }}"}}
    taken = app_client.post("/templates", data=form_of(content, csrf, key="welcome"))
    assert taken.status_code == 409 and 'id="err-key"' in taken.text
    bad_key = app_client.post("/templates", data=form_of(content, csrf, key="Not A Key"))
    assert bad_key.status_code == 400 and 'id="err-key"' in bad_key.text
    r = app_client.post(
        "/templates",
        data=form_of(content, csrf, key="spring-sale", name="Spring sale", kind="marketing", topic="offers"),
        follow_redirects=False,
    )
    assert r.status_code == 303
    with db.session() as s:
        created = s.scalar(select(Template).where(Template.workspace_id == workspace.id, Template.key == "spring-sale"))
        assert created is not None and created.topic == "offers" and created.kind == "marketing"
    assert r.headers["location"] == f"/templates/{created.id}?saved=1"


def test_the_preview_renders_unsaved_content_for_a_chosen_customer(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id, role="viewer", email="viewer@example.com")
    welcome = make_template(db, workspace.id)
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com")
    ingest(db, workspace.id, [message("identify", userId="ann", traits={"first_name": "Ann <b>"})])
    make_customer(db, workspace.id, "bob", email="bob@example.com")  # the newest: the default choice
    login(app_client, "viewer@example.com")  # reading and previewing need no more than a viewer
    htmx = {"HX-Request": "true", "X-CSRF-Token": csrf_of(app_client.get("/templates").text)}

    # The picker finds Ann by any identifier.
    picker = app_client.get("/templates/customers", params={"q": "ann@"})
    assert picker.status_code == 200 and f'value="{ann}"' in picker.text and "bob@" not in picker.text

    unsaved = {
        "email": {"subject": "Hello {{ customer.first_name }}", "html": "<p>Hi {{ customer.first_name }}</p>"},
        "sms": {"text": "Psst {{ customer.first_name }}, {{ customer.email }}"},
    }
    sms = app_client.post(
        f"/templates/{welcome}/preview",
        data={**form_of(unsaved, ""), "customer_id": ann, "preview_channel": "sms"},
        headers=htmx,
    )
    assert sms.status_code == 200 and "<html" not in sms.text
    assert '<pre data-part="text">Psst Ann &lt;b&gt;, ann@example.com</pre>' in sms.text
    email = app_client.post(
        f"/templates/{welcome}/preview",
        data={**form_of(unsaved, ""), "customer_id": ann, "preview_channel": "email"},
        headers=htmx,
    )
    assert '<pre data-part="subject">Hello Ann &lt;b&gt;</pre>' in email.text
    # The HTML part escapes the trait, and is shown in a sandboxed frame.
    assert (
        'sandbox title="The HTML body as the customer sees it" srcdoc="&lt;p&gt;Hi Ann &amp;lt;b&amp;gt;&lt;/p&gt;"'
        in (email.text)
    )
    # A mistake while typing is said in the preview; an empty channel too.
    typo = app_client.post(
        f"/templates/{welcome}/preview",
        data={**form_of({"sms": {"text": "{% if %}"}}, ""), "customer_id": ann, "preview_channel": "sms"},
        headers=htmx,
    )
    assert typo.status_code == 200 and "content.sms.text:" in typo.text
    empty = app_client.post(
        f"/templates/{welcome}/preview", data={"customer_id": ann, "preview_channel": "push"}, headers=htmx
    )
    assert "no push content yet" in empty.text
    # Nothing of this was saved.
    assert len(versions_of(db, welcome)) == 1


def test_a_viewer_cannot_save_a_template(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    make_user(db, workspace.id, role="viewer", email="viewer@example.com")
    welcome = make_template(db, workspace.id)
    login(app_client, "viewer@example.com")
    editor = app_client.get(f"/templates/{welcome}")
    assert "can read and preview templates, not save them" in editor.text
    csrf = csrf_of(editor.text)
    changed = {"sms": {"text": "changed by a viewer"}}
    r = app_client.post(f"/templates/{welcome}", data=form_of(changed, csrf))
    assert r.status_code == 403 and "marketer" in r.text
    assert app_client.post("/templates", data=form_of(changed, csrf, key="viewer-made")).status_code == 403
    assert app_client.get("/templates/new").status_code == 403
    assert len(versions_of(db, welcome)) == 1
    with db.session() as s:
        assert s.scalar(select(Template).where(Template.key == "viewer-made")) is None


def test_another_workspaces_templates_and_customers_are_not_found(
    app_client: httpx.Client, db: Database, make_workspace: object
) -> None:
    a = make_workspace("A")  # type: ignore[operator]
    b = make_workspace("B")  # type: ignore[operator]
    make_user(db, a.id)
    mine = make_template(db, a.id, "mine")
    theirs = make_template(db, b.id, "theirs")
    their_customer = make_customer(db, b.id, "bea", email="bea@example.com")
    login(app_client)
    csrf = csrf_of(app_client.get("/templates").text)
    assert "theirs" not in app_client.get("/templates").text
    assert app_client.get(f"/templates/{theirs}").status_code == 404
    save = app_client.post(f"/templates/{theirs}", data=form_of({"sms": {"text": "taken over"}}, csrf))
    assert save.status_code == 404
    htmx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    preview = app_client.post(
        f"/templates/{theirs}/preview", data={"customer_id": their_customer, "preview_channel": "email"}, headers=htmx
    )
    assert preview.status_code == 404
    # Nor can my own template be previewed for their customer, or their customer be picked.
    preview = app_client.post(
        f"/templates/{mine}/preview",
        data={**form_of(WELCOME, ""), "customer_id": their_customer, "preview_channel": "email"},
        headers=htmx,
    )
    assert preview.status_code == 404 and "bea@" not in preview.text
    picker = app_client.get("/templates/customers", params={"q": "bea@"}).text
    assert their_customer not in picker and "No customer matches" in picker
    assert app_client.get("/templates/customers", params={"customer_id": their_customer}).status_code == 404
    assert len(versions_of(db, theirs)) == 1
