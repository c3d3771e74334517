"""Fixtures for privacy tests: a workspace holding Zelda (to export or erase) and Bob (to leave alone)."""

from __future__ import annotations

import httpx
import pytest

from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_topic
from tests.privacy.people import Person, make_bob, make_zelda


@pytest.fixture
def bob(db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock) -> str:
    make_topic(db, workspace.id, "offers")
    return make_bob(db, workspace)


@pytest.fixture
def zelda(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock, bob: str
) -> Person:
    return make_zelda(app_client, db, workspace, frozen_clock)
