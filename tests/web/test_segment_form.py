"""The segment builder's form is the tree: a definition drawn as the builder and posted back as a
browser would post it is the same definition, for every kind of node; and structural edits."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from shopkeeper.consent.models import CHANNELS, STATUSES
from shopkeeper.segments.validate import parse
from shopkeeper.web import segment_form as sf
from shopkeeper.web.pages.segments import Check
from shopkeeper.web.render import render

EVERYTHING = {
    "and": [
        {"trait": {"key": "plan", "op": "in", "value": ["pro", "team"]}},
        {"trait": {"key": "age", "op": "between", "value": [18, 65.5]}},
        {"trait": {"key": "vip", "op": "eq", "value": True}},
        {"trait": {"key": "signed_up_at", "op": "within_last_days", "value": 30}},
        {"trait": {"key": "email", "op": "exists"}},
        {
            "or": [
                {
                    "event": {
                        "name": "Order Completed",
                        "op": "gte",
                        "count": 3,
                        "within_days": 30,
                        "where": [
                            {"property": "total", "op": "gt", "value": 50},
                            {"property": "currency", "op": "neq", "value": "USD"},
                        ],
                    }
                },
                {"event": {"name": "Viewed Product", "op": "lt", "count": 2, "since": "2026-01-31"}},
                {"not_performed": {"name": "Order Completed", "within_days": 120}},
            ]
        },
        {"not": {"consent": {"channel": "email", "topic": "newsletter", "status": "opted_out"}}},
        {"consent": {"channel": "sms", "status": "unknown"}},
        {"segment": {"key": "lapsed"}},
        {"score": {"name": "clv_tier", "op": "in", "value": ["high", "medium"]}},
        {"score": {"name": "churn_risk", "op": "between", "value": [0.2, 0.8]}},
        {"score": {"name": "rfm", "op": "gte", "value": 300}},
        {"score": {"name": "nps", "op": "exists"}},
    ]
}


class Controls(HTMLParser):
    """What a browser would post: every named input and select (buttons only when pressed)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first: str | None = None
        self._chosen = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name") and a.get("type") != "button":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "select" and a.get("name"):
            self._select, self._first, self._chosen = a["name"], None, False
        elif tag == "option" and self._select is not None:
            if self._first is None:
                self._first = a.get("value", "")
            if "selected" in a and not self._chosen:
                self.fields[self._select] = a.get("value", "")
                self._chosen = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            if not self._chosen:
                self.fields[self._select] = self._first or ""
            self._select = None


def drawn(draft: sf.Draft, **extra: Any) -> str:
    return render(
        "app/segments/_builder.html",
        draft=draft,
        check=Check(),
        focus=extra.get("focus"),
        sf=sf,
        channels=CHANNELS,
        statuses=STATUSES,
        segment_choices=[("lapsed", "Lapsed")],
        topic_choices=["newsletter"],
    )


def posted(draft: sf.Draft) -> dict[str, str]:
    parser = Controls()
    parser.feed(drawn(draft))
    return parser.fields


def test_a_definition_drawn_and_posted_back_is_the_same_definition() -> None:
    fields = posted(sf.from_json(EVERYTHING))
    assert fields["conditions.and[5].or[0].event.where[1].property"] == "currency"
    again = sf.to_json(sf.read(fields))
    assert parse(again) == parse(EVERYTHING)
    assert sf.faithful(EVERYTHING)


def test_what_the_builder_cannot_show_exactly_is_said() -> None:
    assert not sf.faithful({"trait": {"key": "code", "op": "in", "value": ["1", 1]}})
    assert not sf.faithful({"trait": {"key": "city", "op": "in", "value": ["Paris, TX", "Rome"]}})


def test_changing_a_kind_keeps_what_carries_over() -> None:
    fields = posted(sf.from_json(EVERYTHING))
    fields["conditions.and[0]"] = "or"  # a trait made into a group goes inside it
    fields["conditions.and[5].or[2]"] = "event"  # not performed → performed keeps name and window
    fields["conditions.and[6]"] = "and"  # a `not` made into a group keeps its child
    tree = sf.to_json(sf.read(fields))["and"]
    assert tree[0] == {"or": [EVERYTHING["and"][0]]}
    assert tree[5]["or"][2] == {"event": {"name": "Order Completed", "within_days": 120}}
    assert tree[6] == {"and": [EVERYTHING["and"][6]["not"]]}


def test_structural_edits_and_where_the_focus_goes() -> None:
    draft = sf.from_json(EVERYTHING)
    focus = sf.apply(draft, "add:conditions.and[5]", {"conditions.and[5].add": "score"})
    assert focus == "f-conditions-and-5-or-3-score-name"
    assert draft.children[5].children[-1].kind == "score"
    assert 'id="f-conditions-and-5-or-3-score-name"' in drawn(draft)
    assert sf.apply(draft, "remove:conditions.and[1]", {}) == "f-conditions-add"
    assert len(draft.children) == 12
    assert sf.apply(draft, "add-where:conditions.and[4].or[1]", {}) == (
        "f-conditions-and-4-or-1-event-where-0-property"
    )
    assert sf.apply(draft, "remove-where:conditions.and[4].or[0]:0", {}) == "f-conditions-and-4-or-0-event-add-where"
    assert [f.key for f in draft.children[4].children[0].where] == ["currency"]
    assert sf.apply(draft, "remove:conditions.and[99]", {}) is None  # a stale button changes nothing
    assert sf.apply(draft, "nonsense", {}) is None


@pytest.mark.parametrize(
    ("field", "node"),
    [
        ("conditions.and[5].or[0].event.where[1].value", "conditions.and[5].or[0].event.where[1]"),
        ("conditions.and[5].or[0].event.within_days", "conditions.and[5].or[0]"),
        ("conditions.and[6].not.consent.topic", "conditions.and[6].not"),
        ("conditions.and", "conditions"),
        ("purpose", None),
    ],
)
def test_an_error_is_shown_at_the_deepest_node_its_path_names(field: str, node: str | None) -> None:
    assert sf.place_error(sf.from_json(EVERYTHING), field) == node


def test_a_form_cannot_make_the_reader_recurse_without_end() -> None:
    fields = {"conditions": "not", "conditions.was": "not"}
    path = "conditions"
    for _ in range(500):
        path += ".not"
        fields[path] = "not"
        fields[f"{path}.was"] = "not"
    draft = sf.read(fields)
    depth = 0
    while draft.kind == "not":
        draft = draft.children[0]
        depth += 1
    assert depth < 20
