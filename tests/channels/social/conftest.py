"""Fixtures for messaging-app tests: fake Graph and Telegram APIs on loopback, the app without its
own delivery worker, a worker, and a record of what the inbox is told."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shopkeeper.messaging import inbound
from shopkeeper.messaging.inbound import InboundMessage
from tests.channels.sms.conftest import app, worker  # noqa: F401 - the same app and worker
from tests.channels.social.fakes import FakeGraph, FakeTelegram


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    fake = FakeGraph()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def bot_api() -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def heard() -> Iterator[list[InboundMessage]]:
    messages: list[InboundMessage] = []
    remove = inbound.on_inbound(lambda session, message: messages.append(message))
    try:
        yield messages
    finally:
        remove()
