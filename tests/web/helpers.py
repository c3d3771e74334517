"""Logging in to the web UI from tests: a user with a password, and a client holding the session."""

from __future__ import annotations

import re

import httpx

from shopkeeper import clock
from shopkeeper.auth.service import create_user
from shopkeeper.db.session import Database

PASSWORD = "correct horse battery"


def make_user(db: Database, workspace_id: str, email: str = "marketer@example.com", role: str = "marketer") -> str:
    with db.session(write=True) as s:
        return create_user(
            s, workspace_id, email=email, role=role, name=role.title(), password=PASSWORD, now=clock.now()
        ).id


def login(client: httpx.Client, email: str = "marketer@example.com", password: str = PASSWORD) -> httpx.Response:
    return client.post("/login", data={"email": email, "password": password, "next": "/"}, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)
