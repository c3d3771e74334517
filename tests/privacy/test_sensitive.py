"""SPEC §4/C7: sensitive traits — marketing segments and templates cannot use one unless the
workspace explicitly allows that use and records why; the attempt is rejected with a clear error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shopkeeper.auth.models import AuditEntry
from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid, SensitiveDataUse
from shopkeeper.privacy.guard import check_trait_use, trait_of
from tests.conftest import WorkspaceKeys
from tests.privacy.people import bearer
from tests.test_workspace_isolation import snapshot

REASON = "Pharmacy reminders that patients asked for at the counter"


def allow(app_client: httpx.Client, ws: WorkspaceKeys, trait: str, usage: str, reason: str = REASON) -> httpx.Response:
    return app_client.post(
        "/api/v1/sensitive-allowances", headers=bearer(ws), json={"trait": trait, "usage": usage, "reason": reason}
    )


def check(db: Database, ws: WorkspaceKeys, traits: list[str], usage: str, purpose: str = "marketing") -> dict[str, str]:
    with db.session() as s:
        return check_trait_use(s, ws.id, traits, usage, purpose)


@pytest.mark.parametrize(
    ("path", "trait"),
    [
        ("health", "health"),
        ("Health", "health"),
        (" HEALTH ", "health"),
        ("health.condition", "health"),
        ("traits.health", "health"),
        ("traits.Health.condition", "health"),
        ("customer.traits.health", "health"),
        ('traits["health"]', "health"),
        ("customer.traits['family_status'].children", "family_status"),
        ("health[0]", "health"),
        ("plan", "plan"),
    ],
)
def test_a_path_counts_as_its_first_trait(path: str, trait: str) -> None:
    assert trait_of(path) == trait


# (allowances as (trait, usage), the use, the purpose, allowed?)
MATRIX = [
    ([], "segment", "marketing", False),
    ([], "template", "marketing", False),
    ([], "segment", "transactional", True),
    ([], "template", "transactional", True),
    ([("health", "segment")], "segment", "marketing", True),
    ([("health", "segment")], "template", "marketing", False),
    ([("health", "template")], "template", "marketing", True),
    ([("health", "template")], "segment", "marketing", False),
    ([("health", "any")], "segment", "marketing", True),
    ([("health", "any")], "template", "marketing", True),
    ([("religion", "any")], "segment", "marketing", False),
]


@pytest.mark.parametrize(("allowances", "usage", "purpose", "allowed"), MATRIX)
@pytest.mark.parametrize("path", ["health", "traits.Health.condition"])
def test_the_guard_allows_and_denies(
    app_client: httpx.Client,
    db: Database,
    workspace: WorkspaceKeys,
    allowances: list[tuple[str, str]],
    usage: str,
    purpose: str,
    allowed: bool,
    path: str,
) -> None:
    for trait, allowed_usage in allowances:
        assert allow(app_client, workspace, trait, allowed_usage).status_code == 201
    used = ["plan", "email", path]
    if allowed:
        why = check(db, workspace, used, usage, purpose)
        assert set(why) == {"health"}
        assert why["health"] == "transactional" if purpose == "transactional" else why["health"].startswith("allowance")
    else:
        with pytest.raises(SensitiveDataUse) as refused:
            check(db, workspace, used, usage, purpose)
        error = refused.value
        assert (error.code, error.status, error.traits) == ("sensitive_trait", 422, ["health"])
        assert "'health'" in error.message and "/api/v1/sensitive-allowances" in error.message
        assert f'"usage": "{usage}"' in error.message


def test_ordinary_traits_pass_and_several_sensitive_ones_are_named_together(
    db: Database, workspace: WorkspaceKeys
) -> None:
    assert check(db, workspace, ["plan", "traits.age", "email"], "segment") == {}
    assert check(db, workspace, [], "template") == {}
    with pytest.raises(SensitiveDataUse) as refused:
        check(db, workspace, ["religion", "plan", "pregnancy.due_date"], "segment")
    assert refused.value.traits == ["pregnancy", "religion"]


def test_a_revoked_allowance_no_longer_allows(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    allowance = allow(app_client, workspace, "health", "any").json()
    assert check(db, workspace, ["health"], "segment") == {"health": f"allowance {allowance['id']}"}
    r = app_client.delete(f"/api/v1/sensitive-allowances/{allowance['id']}", headers=bearer(workspace))
    assert r.status_code == 200 and r.json()["revoked_at"] and r.json()["revoked_by"].startswith("key:")
    with pytest.raises(SensitiveDataUse):
        check(db, workspace, ["health"], "segment")


def test_the_registry_decides_what_is_sensitive(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    registry = app_client.get("/api/v1/sensitive-traits", headers=bearer(workspace)).json()
    names = {t["name"]: t for t in registry}
    assert {"health", "religion", "family_status", "sexual_orientation"} <= set(names)

    r = app_client.post(
        "/api/v1/sensitive-traits", headers=bearer(workspace), json={"name": " Debt_Level ", "category": "Finance"}
    )
    assert r.status_code == 201 and (r.json()["name"], r.json()["category"]) == ("debt_level", "finance")
    with pytest.raises(SensitiveDataUse):
        check(db, workspace, ["traits.DEBT_LEVEL"], "template")
    dup = app_client.post("/api/v1/sensitive-traits", headers=bearer(workspace), json={"name": "debt_level"})
    assert dup.status_code == 409 and dup.json()["error"]["field"] == "name"

    r = app_client.delete(f"/api/v1/sensitive-traits/{names['health']['id']}", headers=bearer(workspace))
    assert r.status_code == 200
    assert check(db, workspace, ["health"], "segment") == {}
    with db.session() as s:
        actions = [
            (a.action, a.details)
            for a in s.scalars(select(AuditEntry).where(AuditEntry.subject_type == "sensitive_trait"))
        ]
    assert ("sensitive_trait.add", {"name": "debt_level", "category": "finance"}) in actions
    assert ("sensitive_trait.remove", {"name": "health", "category": "health"}) in actions


def test_the_guard_refuses_unknown_uses(db: Database, workspace: WorkspaceKeys) -> None:
    with pytest.raises(Invalid) as bad_usage:
        check(db, workspace, ["health"], "email")
    assert bad_usage.value.field == "usage"
    with pytest.raises(Invalid) as bad_purpose:
        check(db, workspace, ["health"], "segment", "curiosity")
    assert bad_purpose.value.field == "purpose"


def test_allowances_are_audited_with_their_reason_and_kept_when_revoked(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    created = allow(app_client, workspace, "Health", "segment")
    assert created.status_code == 201, created.text
    allowance = created.json()
    assert (allowance["trait"], allowance["usage"], allowance["reason"]) == ("health", "segment", REASON)
    assert allowance["actor"].startswith("key:") and allowance["revoked_at"] is None
    assert allow(app_client, workspace, "health", "segment").status_code == 409  # one active per use

    listed = app_client.get("/api/v1/sensitive-allowances", headers=bearer(workspace)).json()
    assert [a["id"] for a in listed] == [allowance["id"]]
    assert app_client.delete(f"/api/v1/sensitive-allowances/{allowance['id']}", headers=bearer(workspace)).is_success
    again = app_client.delete(f"/api/v1/sensitive-allowances/{allowance['id']}", headers=bearer(workspace))
    assert again.status_code == 409
    assert app_client.get("/api/v1/sensitive-allowances", headers=bearer(workspace)).json() == []
    kept = app_client.get(
        "/api/v1/sensitive-allowances", headers=bearer(workspace), params={"include_revoked": True}
    ).json()
    assert [(a["id"], a["reason"]) for a in kept] == [(allowance["id"], REASON)] and kept[0]["revoked_at"]

    with db.session() as s:
        entries = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject_type == "sensitive_allowance")
            .order_by(AuditEntry.created_at, AuditEntry.id)
        ).all()
    assert [(e.action, e.subject_id, e.details) for e in entries] == [
        ("sensitive_allowance.create", allowance["id"], {"trait": "health", "usage": "segment", "reason": REASON}),
        ("sensitive_allowance.revoke", allowance["id"], {"trait": "health", "usage": "segment", "reason": REASON}),
    ]
    assert all(e.actor.startswith("key:") for e in entries)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trait": "health", "usage": "segment", "reason": "because"}, "reason"),
        ({"trait": "health", "usage": "segment", "reason": "         short    "}, "reason"),
        ({"trait": "health", "usage": "segment"}, "reason"),
        ({"trait": "health", "usage": "email", "reason": REASON}, "usage"),
        ({"trait": "plan", "usage": "segment", "reason": REASON}, "trait"),
        ({"trait": "health.condition", "usage": "segment", "reason": REASON}, "trait"),
        ({"trait": "", "usage": "segment", "reason": REASON}, "trait"),
        ({"trait": "health", "usage": "segment", "reason": REASON, "by": "me"}, "by"),
    ],
)
def test_bad_allowances_are_400s_naming_the_field_and_write_nothing(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, body: dict[str, Any], field: str
) -> None:
    before = snapshot(db, workspace.id)
    r = app_client.post("/api/v1/sensitive-allowances", headers=bearer(workspace), json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    assert snapshot(db, workspace.id) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "health.condition"}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "debt", "category": ""}, "category"),
        ({"name": "debt", "category": "  "}, "category"),
    ],
)
def test_bad_sensitive_traits_are_400s(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, body: dict[str, Any], field: str
) -> None:
    before = snapshot(db, workspace.id)
    r = app_client.post("/api/v1/sensitive-traits", headers=bearer(workspace), json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    assert snapshot(db, workspace.id) == before


def test_unknown_ids_are_404s(app_client: httpx.Client, workspace: WorkspaceKeys) -> None:
    for path in ("/api/v1/sensitive-traits/sen_nope", "/api/v1/sensitive-allowances/alw_nope"):
        r = app_client.delete(path, headers=bearer(workspace))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
