"""SPEC §12: schema-driven fuzzing (Schemathesis) over every documented operation — whatever
the input, the answer is never a 500."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from shopkeeper import clock
from shopkeeper.app import create_app
from shopkeeper.auth.service import create_workspace
from shopkeeper.config import Settings
from shopkeeper.db.session import Database

STREAMS = {"/api/v1/inbox/stream"}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[tuple[FastAPI, str, str]]:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    db = Database(url)
    with db.session(write=True) as s:
        _, write_key, secret_key = create_workspace(s, "Fuzz", clock.now())
    db.dispose()
    app = create_app(Settings(database_url=url, auto_migrate=False))
    with TestClient(app):  # the lifespan (and so the ingest writer) runs while the fuzzer calls
        yield app, write_key, secret_key


def test_no_input_makes_the_api_fail(fuzz_app: tuple[FastAPI, str, str]) -> None:
    app, write_key, secret_key = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    # A live stream answers valid input with a response that never ends; its refusals of bad
    # input are tested in tests/inbox/test_live.py.
    operations = [op for op in operations if op.path not in STREAMS]
    for operation in operations:
        fuzz_operation(operation, write_key if operation.path.startswith("/v1/") else secret_key)


def fuzz_operation(operation: Any, key: str) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=[not_a_server_error])

    fuzz()
