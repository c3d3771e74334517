"""Fixtures for webhook tests: a real receiver on loopback, the operator's allowance of private
addresses (the receiver is on 127.0.0.1, which the SSRF guard refuses by default), a worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shopkeeper.config import get_settings
from shopkeeper.db.session import Database
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.webhook.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


def _allow(monkeypatch: pytest.MonkeyPatch, allowed: bool) -> None:
    monkeypatch.setenv("SHOPKEEPER_WEBHOOK_ALLOW_PRIVATE", "true" if allowed else "false")
    get_settings.cache_clear()


@pytest.fixture
def allow_private(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As an operator would set SHOPKEEPER_WEBHOOK_ALLOW_PRIVATE=true."""
    _allow(monkeypatch, True)
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def guard_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The default: private addresses refused (explicit, whatever the environment says)."""
    _allow(monkeypatch, False)
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def worker(db: Database) -> Iterator[DeliveryWorker]:
    delivery = DeliveryWorker(db, base_url="http://shop.test")
    try:
        yield delivery
    finally:
        delivery.pool.close()
