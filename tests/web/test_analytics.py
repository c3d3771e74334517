"""The analytics page: channel mix and cost, engagement over time, CSAT/NPS trends, CLV spread."""

from __future__ import annotations

from datetime import timedelta

import httpx
import orjson

from shopkeeper import clock
from shopkeeper.db.session import Database
from shopkeeper.messaging.models import Send
from shopkeeper.segments.models import CustomerScore
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer
from tests.helpers import ingest, message
from tests.messaging.factories import make_template, plan
from tests.web.helpers import login, make_user


def test_analytics_counts_what_happened_in_the_period(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id, role="viewer", email="viewer@example.com")
    make_template(db, workspace.id)
    ann = make_customer(db, workspace.id, "ann", email="ann@example.com", phone="+447911123401")
    # Planned for tomorrow, so the app's own delivery worker leaves them as they are set here.
    later = clock.now() + timedelta(days=1)
    first = plan(db, workspace.id, ann, channel="email", send_at=later)
    plan(db, workspace.id, ann, channel="sms", send_at=later)
    with db.session(write=True) as s:
        send = s.get(Send, first)
        assert send is not None
        send.status, send.cost = "clicked", 0.25
        for value in (10.0, 20.0, 400.0):
            s.add(
                CustomerScore(
                    workspace_id=workspace.id,
                    customer_id=f"c{value}",
                    name="clv",
                    value=value,
                    label=None,
                    computed_at=clock.now(),
                )
            )
    ingest(
        db,
        workspace.id,
        [
            message("track", userId="ann", event="Survey Answered", properties={"survey": "csat", "score": 5}),
            message("track", userId="ann", event="Survey Answered", properties={"survey": "csat", "score": 2}),
            message("track", userId="ann", event="Survey Answered", properties={"survey": "nps", "score": 10}),
        ],
    )
    login(app_client, email="viewer@example.com")
    page = app_client.get("/analytics?period=7d")
    assert page.status_code == 200
    charts = {c["label"]: c for c in _charts(page.text)}
    mix = charts["Messages per channel"]["data"]
    assert dict(zip(mix["labels"], mix["datasets"][0]["data"], strict=True)) == {"email": 1, "sms": 1}
    cost = charts["Cost per channel"]["data"]
    assert dict(zip(cost["labels"], cost["datasets"][0]["data"], strict=True))["email"] == 0.25
    engagement = {
        d["label"]: sum(d["data"]) for d in charts["Messages by engagement level per day"]["data"]["datasets"]
    }
    assert engagement["clicked"] == 1 and engagement["delivered"] == 1 and engagement["replied"] == 0
    satisfaction = {d["label"]: d["data"] for d in charts["CSAT and NPS per week"]["data"]["datasets"]}
    assert satisfaction["CSAT %"][-1] == 50.0 and satisfaction["NPS"][-1] == 100.0
    assert "3 customers" in page.text
    assert app_client.get("/analytics?period=2y").status_code == 400


def _charts(html: str) -> list[dict[str, object]]:
    import html as html_lib
    import re

    out = []
    for raw, label in re.findall(r"data-chart='([^']+)' role=\"img\" aria-label=\"([^\"]+)\"", html):
        config = orjson.loads(html_lib.unescape(raw))
        config["label"] = html_lib.unescape(label)
        out.append(config)
    return out
