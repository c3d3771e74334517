"""Fixtures for messaging tests: real SMTP servers on loopback, a delivery worker, a customer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shopkeeper.db.session import Database
from shopkeeper.messaging.pipeline import DeliveryWorker
from tests.messaging.smtp_sink import SmtpSink


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def second_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def worker(db: Database) -> Iterator[DeliveryWorker]:
    delivery = DeliveryWorker(db, base_url="http://shop.test")
    try:
        yield delivery
    finally:
        delivery.pool.close()
