"""The segments pages: the builder's live count of an unsaved tree (errors at the node their path
names), its structural edits, saving (refusals write nothing; viewers cannot), new versions,
members and their CSV export, and another workspace's segments answering 404."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

import httpx
from sqlalchemy import func, select

from shopkeeper import clock
from shopkeeper.db.session import Database
from shopkeeper.segments import service
from shopkeeper.segments.models import Segment, SegmentVersion
from tests.conftest import WorkspaceKeys
from tests.helpers import ingest, message
from tests.web.helpers import csrf_of, login, make_user


def seed(db: Database, workspace_id: str) -> None:
    people = [
        ("ann", {"email": "ann@example.com", "first_name": "Ann", "plan": "pro", "age": 41}),
        ("bob", {"email": "bob@example.com", "first_name": "Bob", "plan": "free", "age": 29}),
        ("cyd", {"email": "=cmd@example.com", "first_name": "Cyd", "plan": "pro", "age": 35}),
    ]
    ingest(db, workspace_id, [message("identify", userId=u, traits=t) for u, t in people])
    ingest(
        db,
        workspace_id,
        [
            message("track", userId="ann", event="Order Completed", properties={"total": 80}),
            message("track", userId="ann", event="Order Completed", properties={"total": 20}),
            message("track", userId="bob", event="Order Completed", properties={"total": 70}),
        ],
    )


def trait_tree(key: str, op: str, value: str = "", kind: str = "text") -> dict[str, str]:
    """The builder's fields for `{"and": [{"trait": {key op value}}]}`."""
    base = "conditions.and[0]"
    return {
        "conditions": "and",
        "conditions.was": "and",
        base: "trait",
        f"{base}.was": "trait",
        f"{base}.trait.key": key,
        f"{base}.trait.op": op,
        f"{base}.trait.type": kind,
        f"{base}.trait.value": value,
    }


def event_tree(name: str, count: str, where: tuple[str, str, str] | None = None) -> dict[str, str]:
    base = "conditions.and[0]"
    fields = {
        "conditions": "and",
        "conditions.was": "and",
        base: "event",
        f"{base}.was": "event",
        f"{base}.event.name": name,
        f"{base}.event.op": "gte",
        f"{base}.event.count": count,
        f"{base}.event.window": "within_days",
        f"{base}.event.within_days": "30",
    }
    if where is not None:
        prop, op, value = where
        w = f"{base}.event.where[0]"
        fields |= {f"{w}.property": prop, f"{w}.op": op, f"{w}.type": "number", f"{w}.value": value}
    return fields


def logged_in(client: httpx.Client, db: Database, workspace_id: str, role: str = "marketer") -> dict[str, str]:
    email = f"{role}@example.com"
    make_user(db, workspace_id, email=email, role=role)
    assert login(client, email=email).status_code == 303
    return {"X-CSRF-Token": csrf_of(client.get("/").text), "HX-Request": "true"}


def oob(text: str, element_id: str) -> str:
    found = re.search(rf'<(\w+)[^>]* id="{re.escape(element_id)}"[^>]*>(.*?)</\1>', text, re.S)
    assert found is not None, f"no #{element_id} in the response"
    return html.unescape(found.group(2).strip())


def count_of(html: str) -> int:
    found = re.search(r'data-testid="segment-count">([\d,]+)<', html)
    assert found is not None, html
    return int(found.group(1).replace(",", ""))


def segments_in(db: Database, workspace_id: str) -> tuple[int, int]:
    with db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Segment).where(Segment.workspace_id == workspace_id)) or 0,
            s.scalar(
                select(func.count()).select_from(SegmentVersion).where(SegmentVersion.workspace_id == workspace_id)
            )
            or 0,
        )


def test_the_live_count_follows_the_conditions_and_errors_show_at_their_node(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    seed(db, workspace.id)
    htmx = logged_in(app_client, db, workspace.id)
    editor = app_client.get("/segments/new")
    assert editor.status_code == 200 and 'name="conditions.and[0].trait.key"' in editor.text
    assert 'for="f-conditions-and-0-trait-key"' in editor.text  # every field is labelled

    pro = app_client.post("/segments/preview", headers=htmx, data=trait_tree("plan", "eq", "pro"))
    assert pro.status_code == 200 and count_of(pro.text) == 2
    assert "Ann" in oob(pro.text, "segment-members") and "Bob" not in pro.text
    assert '"value": "pro"' in oob(pro.text, "tree-json")
    older = app_client.post("/segments/preview", headers=htmx, data=trait_tree("age", "gt", "30", "number"))
    assert count_of(older.text) == 2
    assert (
        count_of(app_client.post("/segments/preview", headers=htmx, data=event_tree("Order Completed", "1")).text) == 2
    )
    big = event_tree("Order Completed", "2", ("total", "gt", "50"))
    assert count_of(app_client.post("/segments/preview", headers=htmx, data=big).text) == 0
    assert (
        count_of(app_client.post("/segments/preview", headers=htmx, data=event_tree("Order Completed", "2")).text) == 1
    )

    # A value of the wrong type and a validator's refusal: the message at the node, no count.
    bad = app_client.post("/segments/preview", headers=htmx, data=trait_tree("age", "gt", "thirty", "number"))
    assert "segment-count" in bad.text and 'data-testid="segment-count"' not in bad.text
    assert oob(bad.text, "err-f-conditions-and-0") == "trait.value: must be a number"
    assert oob(bad.text, "err-f-conditions") == ""
    window = event_tree("Order Completed", "1") | {"conditions.and[0].event.within_days": "0"}
    refused = app_client.post("/segments/preview", headers=htmx, data=window)
    assert oob(refused.text, "err-f-conditions-and-0") == "event.within_days: must be positive"
    filtered = app_client.post(
        "/segments/preview", headers=htmx, data=event_tree("Order Completed", "1", ("total", "gt", "lots"))
    )
    assert oob(filtered.text, "err-f-conditions-and-0-event-where-0") == "value: must be a number"
    # The sensitive-data guard refuses a marketing preview that reads a sensitive trait.
    health = app_client.post("/segments/preview", headers=htmx, data=trait_tree("health", "exists"))
    assert "sensitive trait" in health.text and "health" in health.text
    allowed = app_client.post(
        "/segments/preview", headers=htmx, data=trait_tree("health", "exists") | {"purpose": "transactional"}
    )
    assert count_of(allowed.text) == 0
    empty = app_client.post("/segments/preview", headers=htmx, data={"conditions": "and", "conditions.was": "and"})
    assert "Add a condition" in empty.text


def test_the_builder_adds_removes_and_changes_nodes(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    seed(db, workspace.id)
    htmx = logged_in(app_client, db, workspace.id)
    form = trait_tree("plan", "eq", "pro")

    added = app_client.post(
        "/segments/builder", headers=htmx, data=form | {"conditions.add": "or", "op": "add:conditions"}
    )
    assert added.status_code == 200
    assert 'name="conditions.and[1]"' in added.text and 'value="or" selected' in added.text
    assert 'id="f-conditions-and-1-add"' in added.text and "autofocus" in added.text
    # The result is checked at once: an empty group is refused where it stands.
    assert oob(added.text, "err-f-conditions-and-1") == "or: must be a list of 1 to 100 conditions"

    # A leaf made into a group keeps the leaf inside it; a `not` wraps the node.
    grouped = app_client.post("/segments/builder", headers=htmx, data=form | {"conditions.and[0]": "or"})
    assert 'name="conditions.and[0].or[0].trait.key"' in grouped.text and 'value="plan"' in grouped.text
    negated = app_client.post("/segments/builder", headers=htmx, data=form | {"conditions.and[0]": "not"})
    assert 'name="conditions.and[0].not.trait.key"' in negated.text
    assert count_of(negated.text) == 1  # everyone but the two on pro

    two = form | {
        "conditions.and[1]": "event",
        "conditions.and[1].was": "event",
        "conditions.and[1].event.name": "Order Completed",
        "conditions.and[1].event.window": "all",
    }
    assert count_of(app_client.post("/segments/preview", headers=htmx, data=two).text) == 1
    removed = app_client.post("/segments/builder", headers=htmx, data=two | {"op": "remove:conditions.and[0]"})
    assert "conditions.and[1]" not in removed.text and 'value="Order Completed"' in removed.text
    assert count_of(removed.text) == 2
    with_filter = app_client.post("/segments/builder", headers=htmx, data=two | {"op": "add-where:conditions.and[1]"})
    assert 'name="conditions.and[1].event.where[0].property"' in with_filter.text

    pasted = app_client.post(
        "/segments/builder",
        headers=htmx,
        data=form
        | {
            "op": "json",
            "json": '{"or": [{"segment": {"key": "nope"}}, {"score": {"name": "rfm", "op": "gte", "value": 300}}]}',
        },
    )
    assert 'name="conditions.or[1].score.value"' in pasted.text and 'value="300"' in pasted.text
    assert oob(pasted.text, "err-f-conditions-or-0") == "segment 'nope' does not exist in this workspace"
    broken = app_client.post("/segments/builder", headers=htmx, data=form | {"op": "json", "json": "{nope"})
    assert "not valid JSON" in oob(broken.text, "json-error") and 'value="plan"' in broken.text


def test_saving_a_segment_and_a_new_version(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    seed(db, workspace.id)
    logged_in(app_client, db, workspace.id)
    token = {"csrf": csrf_of(app_client.get("/segments/new").text)}
    meta = {"key": "pros", "name": "Pro plan", "purpose": "marketing", "description": ""}

    # Refusals re-show the form as sent, with the reason, and write nothing.
    wrong = app_client.post("/segments/new", data=token | meta | trait_tree("age", "gt", "old", "number"))
    assert wrong.status_code == 400 and "must be a number" in wrong.text and 'value="old"' in wrong.text
    invalid = app_client.post("/segments/new", data=token | meta | event_tree("Order Completed", "-1"))
    assert invalid.status_code == 400 and "event.count: must be a whole number" in invalid.text
    bad_key = app_client.post(
        "/segments/new", data=token | meta | {"key": "Pro Plan"} | trait_tree("plan", "eq", "pro")
    )
    assert bad_key.status_code == 400 and "key: lower-case letters" in bad_key.text
    sensitive = app_client.post("/segments/new", data=token | meta | trait_tree("health", "eq", "asthma"))
    assert sensitive.status_code == 422
    assert "sensitive trait &#39;health&#39;" in sensitive.text and 'data-testid="save-error"' in sensitive.text
    assert segments_in(db, workspace.id) == (0, 0)

    saved = app_client.post(
        "/segments/new", data=token | meta | trait_tree("plan", "eq", "pro"), follow_redirects=False
    )
    assert saved.status_code == 303
    segment_id = saved.headers["location"].rsplit("/", 1)[1]
    shown = app_client.get(saved.headers["location"])
    assert shown.status_code == 200 and "Ann" in shown.text and "Cyd" in shown.text and "Bob" not in shown.text
    assert 'data-testid="member-count">2<' in shown.text
    listed = app_client.get("/segments")
    assert f'href="/segments/{segment_id}"' in listed.text and "Pro plan" in listed.text

    edit = app_client.get(f"/segments/{segment_id}/edit")
    assert edit.status_code == 200 and 'value="pro"' in edit.text and "readonly" in edit.text
    clash = app_client.post(
        "/segments/new", data=token | meta | trait_tree("plan", "eq", "free"), follow_redirects=False
    )
    assert clash.status_code == 409 and "exists already" in clash.text
    again = app_client.post(
        f"/segments/{segment_id}/edit",
        data=token | meta | {"name": "Free plan"} | trait_tree("plan", "eq", "free"),
        follow_redirects=False,
    )
    assert again.status_code == 303
    with db.session() as s:
        segment = service.get(s, workspace.id, segment_id)
        assert (segment.version, segment.name, segment.member_count) == (2, "Free plan", 1)
    refused = app_client.post(f"/segments/{segment_id}/edit", data=token | meta | trait_tree("health", "exists"))
    assert refused.status_code == 422
    assert segments_in(db, workspace.id) == (1, 2)


def test_viewers_read_but_cannot_save(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    seed(db, workspace.id)
    with db.session(write=True) as s:
        segment = service.create(
            s,
            workspace.id,
            key="pros",
            name="Pros",
            conditions={"trait": {"key": "plan", "op": "eq", "value": "pro"}},
            actor="test",
            now=clock.now(),
        )
        service.refresh(s, segment, clock.now())
        segment_id = segment.id
    htmx = logged_in(app_client, db, workspace.id, role="viewer")
    token = {"csrf": htmx["X-CSRF-Token"]}
    assert app_client.get("/segments").status_code == 200
    assert "New segment" not in app_client.get("/segments").text
    assert app_client.get(f"/segments/{segment_id}").status_code == 200
    assert count_of(app_client.post("/segments/preview", headers=htmx, data=trait_tree("plan", "eq", "pro")).text) == 2
    assert app_client.get("/segments/new").status_code == 403
    created = app_client.post("/segments/new", data=token | {"key": "x", "name": "x"} | trait_tree("plan", "eq", "pro"))
    assert created.status_code == 403
    changed = app_client.post(f"/segments/{segment_id}/edit", data=token | trait_tree("plan", "eq", "free"))
    assert changed.status_code == 403 and "marketer" in changed.text
    assert app_client.post(f"/segments/{segment_id}/archive", data=token).status_code == 403
    assert app_client.post(f"/segments/{segment_id}/refresh", data=token).status_code == 403
    assert segments_in(db, workspace.id) == (1, 1)


def test_another_workspaces_segments_are_not_found(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, make_workspace: Any
) -> None:
    other = make_workspace("Other")
    with db.session(write=True) as s:
        theirs = service.create(
            s,
            other.id,
            key="theirs",
            name="Theirs",
            conditions={"trait": {"key": "plan", "op": "exists"}},
            actor="test",
            now=clock.now(),
        ).id
    htmx = logged_in(app_client, db, workspace.id)
    token = {"csrf": htmx["X-CSRF-Token"]}
    for path in (f"/segments/{theirs}", f"/segments/{theirs}/edit", f"/segments/{theirs}/members.csv"):
        assert app_client.get(path).status_code == 404, path
    for path in (f"/segments/{theirs}/edit", f"/segments/{theirs}/refresh", f"/segments/{theirs}/archive"):
        response = app_client.post(path, data=token | trait_tree("plan", "eq", "pro"))
        assert response.status_code == 404, path
    # Nor can a builder name it: in-segment conditions resolve within the workspace only.
    named = app_client.post(
        "/segments/preview",
        headers=htmx,
        data={
            "conditions": "segment",
            "conditions.was": "segment",
            "conditions.segment.key": "theirs",
        },
    )
    assert "segment &#39;theirs&#39; does not exist" in named.text
    with db.session() as s:
        assert service.get(s, other.id, theirs).version == 1 and service.get(s, other.id, theirs).archived_at is None


def test_members_export_as_csv(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    seed(db, workspace.id)
    with db.session(write=True) as s:
        segment = service.create(
            s,
            workspace.id,
            key="pros",
            name="Pros",
            conditions={"trait": {"key": "plan", "op": "eq", "value": "pro"}},
            actor="test",
            now=clock.now(),
        )
        service.refresh(s, segment, clock.now())
        segment_id = segment.id
    logged_in(app_client, db, workspace.id, role="viewer")
    response = app_client.get(f"/segments/{segment_id}/members.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="segment-pros.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted((r["first_name"], r["email"]) for r in rows) == [
        ("Ann", "ann@example.com"),
        ("Cyd", "'=cmd@example.com"),  # never a formula in a spreadsheet
    ]
    assert all(r["customer_id"].startswith("cus") and r["entered_at"] for r in rows)


def test_a_segment_being_built_is_watched_until_its_members_show(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    seed(db, workspace.id)
    with db.session(write=True) as s:
        segment_id = service.create(
            s,
            workspace.id,
            key="pros",
            name="Pros",
            conditions={"trait": {"key": "plan", "op": "eq", "value": "pro"}},
            actor="test",
            now=clock.now(),
        ).id
    logged_in(app_client, db, workspace.id, role="viewer")
    building = app_client.get(f"/segments/{segment_id}")
    assert 'data-testid="building"' in building.text and 'hx-trigger="every 2s"' in building.text
    with db.session(write=True) as s:
        service.refresh(s, service.get(s, workspace.id, segment_id), clock.now())
    built = app_client.get(f"/segments/{segment_id}")
    assert 'data-testid="building"' not in built.text and "every 2s" not in built.text
    assert 'data-testid="member-count">2<' in built.text
