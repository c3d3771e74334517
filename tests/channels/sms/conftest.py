"""Fixtures for SMS tests: fake Twilio servers on loopback, the app (without its own delivery
worker, so the test's worker is the only one sending), a worker and an SMS provider row."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shopkeeper.db.session import Database
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.channels.sms.fake_twilio import FakeTwilio


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def second_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(sender="+14155552671")
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def app(db_url: str, db: Database) -> Iterator[httpx.Client]:
    """The app in-process; its own delivery worker is off (the tests drain theirs)."""
    from fastapi.testclient import TestClient

    from shopkeeper.app import create_app
    from shopkeeper.config import Settings

    settings = Settings(database_url=db_url, auto_migrate=False, delivery_in_process=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def worker(db: Database) -> Iterator[DeliveryWorker]:
    delivery = DeliveryWorker(db, base_url="http://shop.test")
    try:
        yield delivery
    finally:
        delivery.pool.close()
