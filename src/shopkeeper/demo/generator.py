"""The demo shop as a stream of Segment payloads: options in, identical payloads out.

`DemoShop.build` draws the people and plans every session (cheap: no payload exists yet, so the
exact event count is known up front for the progress bar); `payloads()` then renders sessions
in time order, so each customer's events come out in the order they happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from shopkeeper.demo.behaviour import VISITOR_SHARE, Plan, Window, plan_shop
from shopkeeper.demo.payloads import Renderer
from shopkeeper.demo.people import Person, Visitor, draw_people
from shopkeeper.errors import Invalid

MAX_CUSTOMERS = 1_000_000
MAX_EVENTS_PER_CUSTOMER = 1_000  # beyond this the year runs out of hours for the visits


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Everything the generated data depends on: equal options, equal payloads."""

    until: date  # the data covers the twelve months before midnight UTC of this day
    seed: int = 42
    customers: int = 10_000
    events: int = 200_000  # page and track events; identify calls come on top

    def validate(self) -> None:
        if not 1 <= self.customers <= MAX_CUSTOMERS:
            raise Invalid(f"--customers: must be between 1 and {MAX_CUSTOMERS:,}", field="customers")
        if self.events < 0:
            raise Invalid("--events: must be 0 or more", field="events")
        if self.events > self.customers * MAX_EVENTS_PER_CUSTOMER:
            raise Invalid(
                f"--events: at most {MAX_EVENTS_PER_CUSTOMER:,} per customer "
                f"({self.customers * MAX_EVENTS_PER_CUSTOMER:,} for {self.customers:,} customers)",
                field="events",
            )
        if not date(1971, 1, 1) <= self.until <= date(2199, 12, 31):
            raise Invalid("--until: must lie between 1971 and 2199", field="until")

    @property
    def namespace(self) -> uuid.UUID:
        """Names every messageId: another seed, size or end date gives other ids."""
        key = f"seed={self.seed}&until={self.until.isoformat()}&customers={self.customers}&events={self.events}"
        return uuid.uuid5(uuid.NAMESPACE_URL, f"https://shopkeeper.invalid/demo?{key}")


class DemoShop:
    """People, their plan and the renderer for one set of options."""

    def __init__(self, options: DemoOptions, people: list[Person], visitors: list[Visitor], plan: Plan) -> None:
        self.options = options
        self.people = people
        self.visitors = visitors
        self.plan = plan

    @classmethod
    def build(cls, options: DemoOptions) -> DemoShop:
        options.validate()
        people, visitors = draw_people(options.seed, options.customers, round(options.customers * VISITOR_SHARE))
        plan = plan_shop(options.seed, people, visitors, Window.ending(options.until), options.events)
        return cls(options, people, visitors, plan)

    @property
    def window(self) -> Window:
        return self.plan.window

    @property
    def event_count(self) -> int:
        """Every message `payloads()` yields: page and track events plus identify calls."""
        return self.plan.tracked + self.plan.identifies

    def payloads(self) -> Iterator[dict[str, Any]]:
        renderer = Renderer(self.options.seed, self.options.namespace, self.plan.shoppers, self.visitors)
        for session in self.plan.sessions:
            yield from renderer.render(session)
