"""Logging in and out of the web UI: argon2 passwords, server-side sessions, CSRF on every form."""

from __future__ import annotations

import httpx

from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.web.helpers import csrf_of, login, make_user


def test_pages_need_a_session_and_the_login_form_gets_one(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id)
    page = app_client.get("/?range=7d", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/%3Frange%3D7d"
    assert app_client.get("/login").status_code == 200

    wrong = login(app_client, password="not the password")
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    assert login(app_client, email="nobody@example.com").status_code == 401

    ok = login(app_client)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = app_client.get("/")
    assert home.status_code == 200 and "Dashboard" in home.text
    assert "content-security-policy" in home.headers


def test_a_form_without_the_sessions_csrf_token_is_refused(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id)
    login(app_client)
    token = csrf_of(app_client.get("/").text)
    assert app_client.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert app_client.post("/logout", data={"csrf": "forged"}, follow_redirects=False).status_code == 403
    assert app_client.get("/").status_code == 200  # still logged in
    out = app_client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303


def test_logging_out_ends_the_session_on_the_server(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id)
    cookie = login(app_client).cookies.get("shopkeeper_session")
    assert cookie
    token = csrf_of(app_client.get("/").text)
    app_client.post("/logout", data={"csrf": token})
    # A copy of the old cookie (say, stolen before logging out) opens nothing any more.
    app_client.cookies.set("shopkeeper_session", cookie)
    assert app_client.get("/", follow_redirects=False).status_code == 303


def test_someone_with_accounts_in_two_workspaces_picks_one(
    app_client: httpx.Client, db: Database, make_workspace: object
) -> None:
    a = make_workspace("Alpha")  # type: ignore[operator]
    b = make_workspace("Beta")  # type: ignore[operator]
    make_user(db, a.id)
    make_user(db, b.id)
    first = login(app_client)
    assert first.status_code == 200 and 'name="workspace"' in first.text
    chosen = app_client.post(
        "/login",
        data={"email": "marketer@example.com", "password": "correct horse battery", "workspace": b.slug},
        follow_redirects=False,
    )
    assert chosen.status_code == 303
    assert "Beta" in app_client.get("/").text


def test_the_next_parameter_never_leaves_the_site(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    make_user(db, workspace.id)
    response = app_client.post(
        "/login",
        data={"email": "marketer@example.com", "password": "correct horse battery", "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"
