"""SPEC §7/§9: the customer's 360° page shows which segments they are in now (since when) and
their scores — RFM, CLV and P(alive)/churn risk, NPS and CSAT — through GET /api/v1/customers/{id}."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.helpers import ingest, message
from tests.privacy.people import customer_of

SEGMENTS = {
    "buyers": {"event": {"name": "Order Completed"}},
    "pro": {"trait": {"key": "plan", "op": "eq", "value": "pro"}},
    "big-spenders": {"event": {"name": "Order Completed", "where": [{"property": "total", "op": "gt", "value": 500}]}},
}


def _auth(ws: WorkspaceKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.secret_key}"}


def _ago(days: int) -> str:
    return (clock.now() - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def _shop(db: Database, ws: WorkspaceKeys) -> None:
    """40 other buyers, some buying again and again, some once and never again (enough, and
    varied enough, for the CLV models to be fitted), and Ada: an anonymous visit that her
    sign-up absorbs, three orders, an NPS and two CSAT answers."""
    draw = random.Random(7)
    others = []
    for n in range(40):
        first = draw.randint(30, 360)
        days = [first] + [draw.randint(0, first) for _ in range(draw.choice((0, 0, 1, 2, 4, 7)))]
        others += [
            message(
                "track",
                userId=f"c{n}",
                event="Order Completed",
                properties={"total": draw.randint(10, 200)},
                timestamp=_ago(d),
            )
            for d in days
        ]
    ingest(db, ws.id, others)
    ingest(db, ws.id, [message("page", anonymousId="anon-ada", name="Pricing", timestamp=_ago(90))])
    ingest(db, ws.id, [message("identify", userId="ada", traits={"plan": "pro"})])
    ada = [
        message("identify", userId="ada", anonymousId="anon-ada"),
        *(
            message("track", userId="ada", event="Order Completed", properties={"total": t}, timestamp=_ago(d))
            for t, d in ((80, 60), (120, 30), (95, 3))
        ),
        message("track", userId="ada", event="Survey Answered", properties={"survey": "nps", "score": 10}),
        message("track", userId="ada", event="Survey Answered", properties={"survey": "csat", "score": 5}),
        message("track", userId="ada", event="Survey Answered", properties={"survey": "csat", "score": 4}),
    ]
    ingest(db, ws.id, ada)


def _refresh_all(client: httpx.Client, ws: WorkspaceKeys) -> None:
    for segment in client.get("/api/v1/segments", headers=_auth(ws)).json()["data"]:
        r = client.post(f"/api/v1/segments/{segment['id']}/refresh", headers=_auth(ws))
        assert r.status_code == 200, r.text


def _section(client: httpx.Client, ws: WorkspaceKeys, customer_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/customers/{customer_id}", headers=_auth(ws))
    assert r.status_code == 200, r.text
    section: dict[str, Any] = r.json()["sections"]["segments"]
    return section


@pytest.fixture
def ada(app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock) -> str:
    _shop(db, workspace)
    for key, conditions in SEGMENTS.items():
        r = app_client.post(
            "/api/v1/segments",
            json={"key": key, "name": key.title(), "conditions": conditions},
            headers=_auth(workspace),
        )
        assert r.status_code == 201, r.text
    _refresh_all(app_client, workspace)
    r = app_client.post("/api/v1/scores/refresh", headers=_auth(workspace))
    assert r.status_code == 200, r.text
    customer_id = customer_of(db, workspace.id, "user_id", "ada")
    assert customer_id is not None
    return customer_id


def test_the_360_view_shows_current_segments_and_every_score(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock, ada: str
) -> None:
    entered = clock.now()
    section = _section(app_client, workspace, ada)
    assert [(m["key"], m["name"], m["entered_at"], m["version"]) for m in section["memberships"]] == [
        ("buyers", "Buyers", entered.isoformat().replace("+00:00", "Z"), 1),
        ("pro", "Pro", entered.isoformat().replace("+00:00", "Z"), 1),
    ]
    scores = section["scores"]
    assert {
        "rfm",
        "rfm_r",
        "rfm_f",
        "rfm_m",
        "rfm_segment",
        "clv",
        "clv_tier",
        "p_alive",
        "churn_risk",
        "expected_purchases_90d",
        "nps",
        "nps_group",
        "csat",
    } == set(scores)
    assert 111 <= scores["rfm"]["value"] <= 555 and scores["rfm_segment"]["label"]
    assert scores["clv"]["value"] > 0 and scores["clv_tier"]["label"] in ("high", "medium", "low")
    assert 0 < scores["p_alive"]["value"] <= 1
    assert scores["churn_risk"]["value"] == pytest.approx(1 - scores["p_alive"]["value"])
    assert (scores["nps"]["value"], scores["nps_group"]["label"]) == (10, "promoter")
    assert scores["csat"]["value"] == 4.5
    # The same as the scores endpoint says, and the same through the merged-away anonymous id.
    understanding = app_client.get(f"/api/v1/scores/customers/{ada}", headers=_auth(workspace)).json()
    assert [s["key"] for s in understanding["segments"]] == ["buyers", "pro"]
    assert {k: v["value"] for k, v in understanding["scores"].items()} == {k: v["value"] for k, v in scores.items()}
    view = app_client.get(f"/api/v1/customers/{ada}", headers=_auth(workspace)).json()
    assert len(view["merged_ids"]) == 1
    assert _section(app_client, workspace, view["merged_ids"][0]) == section


def test_leaving_a_segment_takes_it_off_the_view(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock, ada: str
) -> None:
    frozen_clock.advance(timedelta(hours=1))
    ingest(db, workspace.id, [message("identify", userId="ada", traits={"plan": "free"})])
    ingest(db, workspace.id, [message("track", userId="ada", event="Order Completed", properties={"total": 900})])
    _refresh_all(app_client, workspace)
    section = _section(app_client, workspace, ada)
    assert [(m["key"], m["entered_at"]) for m in section["memberships"]] == [
        ("big-spenders", clock.now().isoformat().replace("+00:00", "Z")),
        ("buyers", (clock.now() - timedelta(hours=1)).isoformat().replace("+00:00", "Z")),
    ]
    # An archived segment is not shown, even though its membership rows stay.
    big = next(
        s
        for s in app_client.get("/api/v1/segments", headers=_auth(workspace)).json()["data"]
        if s["key"] == "big-spenders"
    )
    assert app_client.delete(f"/api/v1/segments/{big['id']}", headers=_auth(workspace)).status_code == 200
    assert [m["key"] for m in _section(app_client, workspace, ada)["memberships"]] == ["buyers"]


def test_a_customer_with_no_segments_or_scores_has_an_empty_section(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    ingest(db, workspace.id, [message("identify", userId="newbie", traits={"plan": "free"})])
    customer_id = customer_of(db, workspace.id, "user_id", "newbie")
    assert customer_id is not None
    assert _section(app_client, workspace, customer_id) == {"memberships": [], "scores": {}}
