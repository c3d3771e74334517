"""The journeys API: validate, create (JSON or YAML), change, activate, enter by API, pause,
resume, archive, stats; bad input answers 4xx naming the field and writes nothing."""

from __future__ import annotations

import time

import httpx

from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer
from tests.messaging.factories import make_template

YAML = """
trigger: {type: api}
goal: {event: Order Completed, within: 7d}
steps:
  - {id: control, type: holdout, percent: 10}
  - {id: hello, type: send, channel: email, template: welcome}
  - {id: later, type: wait, duration: 3d}
"""


def test_a_journey_from_draft_to_archive(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys) -> None:
    auth = {"Authorization": f"Bearer {workspace.secret_key}"}
    make_template(db, workspace.id)
    customer = make_customer(db, workspace.id, "ann", email="ann@example.com")

    bad = app_client.post(
        "/api/v1/journeys/validate",
        headers=auth,
        json={"definition": YAML.replace("duration: 3d", "duration: soon")},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "steps[2] (later).duration"
    ok = app_client.post("/api/v1/journeys/validate", headers=auth, json={"definition": YAML})
    assert ok.status_code == 200 and [s["id"] for s in ok.json()["steps"]] == ["control", "hello", "later"]

    refused = app_client.post(
        "/api/v1/journeys", headers=auth, json={"key": "onboarding", "name": "Onboarding", "definition": {"steps": []}}
    )
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "definition.trigger"
    assert app_client.get("/api/v1/journeys", headers=auth).json()["data"] == []

    created = app_client.post(
        "/api/v1/journeys", headers=auth, json={"key": "onboarding", "name": "Onboarding", "definition": YAML}
    )
    assert created.status_code == 201 and created.json()["status"] == "draft"
    assert (
        app_client.post(
            "/api/v1/journeys", headers=auth, json={"key": "onboarding", "name": "Again", "definition": YAML}
        ).status_code
        == 409
    )
    early = app_client.post("/api/v1/journeys/onboarding/entries", headers=auth, json={"customer_id": customer})
    assert early.status_code == 409 and early.json()["error"]["field"] == "status"

    assert app_client.post("/api/v1/journeys/onboarding/activate", headers=auth).json()["status"] == "active"
    first = app_client.post(
        "/api/v1/journeys/onboarding/entries", headers=auth, json={"customer_id": customer, "idempotency_key": "k1"}
    ).json()
    again = app_client.post(
        "/api/v1/journeys/onboarding/entries", headers=auth, json={"customer_id": customer, "idempotency_key": "k1"}
    ).json()
    assert first["entered"] is True and again["entered"] is False and again["run"]["id"] == first["run"]["id"]
    run_id = first["run"]["id"]
    deadline = time.monotonic() + 20  # the app's own journeys worker runs it
    while True:
        run = app_client.get(f"/api/v1/journeys/onboarding/runs/{run_id}", headers=auth).json()
        if {"waiting", "control"} & {step["outcome"] for step in run["steps"]}:
            break
        assert time.monotonic() < deadline, run
        time.sleep(0.05)

    stats = app_client.get("/api/v1/journeys/onboarding/stats", headers=auth).json()
    assert stats["entered"] == 1
    assert stats["steps"]["entry"]["outcomes"] == {"entered": 1}

    changed = app_client.put(
        "/api/v1/journeys/onboarding/definition", headers=auth, json={"definition": YAML.replace("3d", "4d")}
    ).json()
    assert changed["latest_version"] == 2 and changed["live_version"] == 2
    v1 = app_client.get("/api/v1/journeys/onboarding/versions/1", headers=auth).json()
    assert v1["definition"]["steps"][2]["duration"] == "3d"

    paused = app_client.post("/api/v1/journeys/onboarding/pause", headers=auth, json={"reason": "copy review"})
    assert paused.json()["status"] == "paused" and paused.json()["paused_reason"] == "copy review"
    assert app_client.post("/api/v1/journeys/onboarding/pause", headers=auth).status_code == 409
    assert app_client.post("/api/v1/journeys/onboarding/resume", headers=auth).json()["status"] == "active"
    assert app_client.post("/api/v1/journeys/onboarding/archive", headers=auth).json()["status"] == "archived"
    runs = app_client.get("/api/v1/journeys/onboarding/runs", headers=auth).json()["data"]
    assert all(r["state"] in ("exited", "completed") for r in runs)
    assert app_client.get("/api/v1/journeys/onboarding/runs?state=lost", headers=auth).status_code == 400
    assert app_client.get("/api/v1/journeys/nope", headers=auth).status_code == 404
    assert app_client.get("/api/v1/alerts", headers=auth).json()["data"] == []


def test_erasing_a_customer_removes_their_journey_runs(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    auth = {"Authorization": f"Bearer {workspace.secret_key}"}
    make_template(db, workspace.id)
    customer = make_customer(db, workspace.id, "ann", email="ann@example.com")
    app_client.post("/api/v1/journeys", headers=auth, json={"key": "j", "name": "J", "definition": YAML})
    app_client.post("/api/v1/journeys/j/activate", headers=auth)
    entry = app_client.post(
        "/api/v1/journeys/j/entries", headers=auth, json={"customer_id": customer, "data": {"note": "secret-x"}}
    )
    assert entry.json()["entered"] is True
    erased = app_client.post(f"/api/v1/customers/{customer}/erase", headers=auth, json={"confirm": customer})
    assert erased.status_code == 200, erased.text
    assert app_client.get("/api/v1/journeys/j/runs", headers=auth).json()["data"] == []
    from sqlalchemy import select

    from shopkeeper.journeys.models import JourneyStep

    with db.session() as s:
        assert list(s.scalars(select(JourneyStep.id).where(JourneyStep.customer_id == customer))) == []
