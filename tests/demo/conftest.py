"""A small demo shop, built once: the generator is pure, so tests can share its payloads."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from shopkeeper.demo.generator import DemoOptions, DemoShop

UNTIL = date(2026, 3, 1)


def build(**overrides: Any) -> DemoShop:
    options: dict[str, Any] = {"until": UNTIL, "seed": 42, "customers": 400, "events": 8_000}
    options.update(overrides)
    return DemoShop.build(DemoOptions(**options))


@pytest.fixture(scope="session")
def shop() -> DemoShop:
    return build()


@pytest.fixture(scope="session")
def payloads(shop: DemoShop) -> list[dict[str, Any]]:
    return list(shop.payloads())
