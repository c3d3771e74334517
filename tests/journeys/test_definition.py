"""Journey definitions: what is accepted, and errors that name the bad step and field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shopkeeper.errors import Invalid
from shopkeeper.journeys import definition as d

BASIC: dict[str, Any] = {
    "trigger": {"type": "event", "event": "Signed Up"},
    "steps": [
        {"id": "hello", "type": "send", "channel": "email", "template": "welcome"},
        {"id": "later", "type": "wait", "duration": "2d"},
        {"id": "nudge", "type": "send", "channel": "auto", "channels": ["email", "sms"], "template": "welcome"},
    ],
}


def field_of(raw: Any) -> str | None:
    with pytest.raises(Invalid) as info:
        d.parse(raw)
    assert info.value.message.startswith(f"{info.value.field}: ")
    return info.value.field


def test_steps_follow_each_other_unless_told_and_the_last_ends() -> None:
    parsed = d.parse(BASIC)
    assert parsed.first == "hello"
    assert [s.next for s in parsed.steps.values()] == ["later", "nudge", "end"]
    wait = parsed.steps["later"].config
    assert isinstance(wait, d.Wait) and wait.duration == timedelta(days=2)
    assert d.kind_of(parsed) == "journey"


def test_yaml_text_is_the_same_definition() -> None:
    text = """
trigger: {type: event, event: Signed Up}
steps:
  - {id: hello, type: send, channel: email, template: welcome}
  - {id: later, type: wait, duration: 2d}
  - {id: nudge, type: send, channel: auto, channels: [email, sms], template: welcome}
"""
    assert d.parse(text) == d.parse(BASIC)


def test_bad_yaml_says_where() -> None:
    with pytest.raises(Invalid, match="line 2"):
        d.parse("trigger: {type: event\nsteps: [")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["steps"][1].update(duration="soon"), "steps[1] (later).duration"),
        (lambda b: b["steps"][0].update(channel="fax"), "steps[0] (hello).channel"),
        (lambda b: b["steps"][2].update(channels=["email", "pigeon"]), "steps[2] (nudge).channels[1]"),
        (lambda b: b["steps"][0].update(next="nowhere"), "steps[0] (hello)"),
        (lambda b: b["steps"][1].update(id="hello"), "steps[1].id"),
        (lambda b: b["steps"][0].update(colour="red"), "steps[0] (hello).colour"),
        (lambda b: b["trigger"].update(type="telepathy"), "trigger.type"),
        (lambda b: b.update(reentry={"policy": "sometimes"}), "reentry.policy"),
        (lambda b: b.update(goal={"event": "Order Completed"}), "goal.within"),
        (lambda b: b.update(monitor={"bounce_rate": 2}), "monitor.bounce_rate"),
        (lambda b: b["steps"].append({"id": "x", "type": "holdout", "percent": 100}), "steps[3] (x).percent"),
        (
            lambda b: b["steps"].append(
                {
                    "id": "b",
                    "type": "branch",
                    "cases": [{"condition": {"trait": {"key": "vip", "op": "zz"}}, "next": "end"}],
                    "else": "end",
                }
            ),
            "steps[3] (b).cases[0].condition.trait.op",
        ),
        (
            lambda b: b["steps"].append({"id": "w", "type": "wait", "until_event": {"event": "Paid"}}),
            "steps[3] (w).timeout",
        ),
    ],
)
def test_errors_name_the_bad_node(change: Any, field: str) -> None:
    import copy

    raw = copy.deepcopy(BASIC)
    change(raw)
    assert field_of(raw) == field


def test_a_loop_without_a_wait_is_refused_and_one_with_a_wait_is_not() -> None:
    busy = {
        "trigger": {"type": "api"},
        "steps": [
            {"id": "a", "type": "update_trait", "traits": {"x": 1}},
            {"id": "b", "type": "update_trait", "traits": {"x": 2}, "next": "a"},
        ],
    }
    with pytest.raises(Invalid, match="loops back to 'a' without a wait"):
        d.parse(busy)
    busy["steps"].insert(1, {"id": "pause", "type": "wait", "duration": "1d"})
    assert d.parse(busy).steps["b"].next == "a"


def test_a_repeating_broadcast_is_a_campaign_that_reaches_its_audience_every_time() -> None:
    parsed = d.parse(
        {
            "trigger": {"type": "schedule", "cron": "0 9 * * 1", "segment": "vip", "per_minute": 100},
            "steps": [{"type": "send", "channel": "email", "template": "news"}],
        }
    )
    assert d.kind_of(parsed) == "campaign"
    assert parsed.reentry.policy == "always"
    assert (
        field_of({"trigger": {"type": "schedule", "cron": "every monday", "segment": "v"}, "steps": BASIC["steps"]})
        == "trigger.cron"
    )


def test_event_names_cover_entry_exit_goal_and_waits() -> None:
    raw = {
        **BASIC,
        "exit": [{"event": "Unsubscribed"}],
        "goal": {"event": "Order Completed", "within": "7d"},
    }
    raw["steps"] = [*BASIC["steps"], {"id": "w", "type": "wait", "until_event": {"event": "Paid"}, "timeout": "1d"}]
    assert d.parse(raw).event_names() == {"Signed Up", "Unsubscribed", "Order Completed", "Paid"}
