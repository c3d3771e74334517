"""The chat admin API: the identity secret and its rotation, allowed origins enforced on the socket."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from shopkeeper.channels.chat.tokens import user_token
from tests.conftest import WorkspaceKeys


def refused(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> int:
    assert isinstance(client, TestClient)
    with (
        pytest.raises(WebSocketDisconnect) as caught,
        client.websocket_connect(path, headers=dict(headers or {})) as ws,
    ):
        ws.receive_json()
    return caught.value.code


def test_rotating_the_identity_secret_retires_old_user_tokens(
    app_client: httpx.Client, workspace: WorkspaceKeys
) -> None:
    auth = {"Authorization": f"Bearer {workspace.secret_key}"}
    before = app_client.get("/api/v1/chat/settings", headers=auth).json()
    assert before["secret_version"] == 1 and workspace.write_key not in before["widget_snippet"]
    old_token = user_token(before["identity_secret"], "user-1")
    path = f"/chat/ws?write_key={workspace.write_key}&user_id=user-1&user_token="
    assert isinstance(app_client, TestClient)
    with app_client.websocket_connect(path + old_token) as ws:
        assert ws.receive_json()["verified"] is True

    after = app_client.patch("/api/v1/chat/settings", headers=auth, json={"rotate_identity_secret": True}).json()
    assert after["secret_version"] == 2 and after["identity_secret"] != before["identity_secret"]
    assert refused(app_client, path + old_token) == 4401
    with app_client.websocket_connect(path + user_token(after["identity_secret"], "user-1")) as ws:
        assert ws.receive_json()["type"] == "ready"
    # The secret is never stored where the workspace API shows settings.
    shown = app_client.get("/api/v1/workspace", headers=auth).text
    assert after["identity_secret"] not in shown and before["identity_secret"] not in shown
    assert (
        app_client.get("/api/v1/chat/settings", headers={"Authorization": f"Bearer {workspace.write_key}"}).status_code
        == 403
    )


def test_allowed_origins_limit_which_pages_may_open_the_chat(
    app_client: httpx.Client, workspace: WorkspaceKeys
) -> None:
    auth = {"Authorization": f"Bearer {workspace.secret_key}"}
    bad = app_client.patch("/api/v1/chat/settings", headers=auth, json={"allowed_origins": ["shop.example"]})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "allowed_origins"
    ok = app_client.patch("/api/v1/chat/settings", headers=auth, json={"allowed_origins": ["https://Shop.example"]})
    assert ok.json()["allowed_origins"] == ["https://shop.example"]

    path = f"/chat/ws?write_key={workspace.write_key}&anonymous_id=anon-o"
    assert refused(app_client, path, {"origin": "https://evil.example"}) == 4403
    assert refused(app_client, path) == 4403
    assert isinstance(app_client, TestClient)
    with app_client.websocket_connect(path, headers={"origin": "https://shop.example"}) as ws:
        assert ws.receive_json()["type"] == "ready"
