"""Identity verification for chat visitors, as Intercom does it: the site's own server signs the
user id it shows the widget (HMAC-SHA256 with the workspace's chat identity secret), so a visitor
cannot claim somebody else's user id and read their conversation.

The secret is derived from the workspace's signing secret and a version number kept in
`workspace.settings["chat"]["secret_version"]`: nothing secret is stored in settings (which the
workspace API shows), and rotating it is bumping the version.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from shopkeeper.auth.models import Workspace


def chat_settings(workspace: Workspace) -> dict[str, Any]:
    chat = (workspace.settings or {}).get("chat")
    return dict(chat) if isinstance(chat, dict) else {}


def secret_version(workspace: Workspace) -> int:
    version = chat_settings(workspace).get("secret_version", 1)
    return version if isinstance(version, int) and version > 0 else 1


def identity_secret(workspace: Workspace) -> str:
    """The key a site signs user ids with (shown to admins by GET /api/v1/chat/settings)."""
    label = f"chat-identity:{secret_version(workspace)}".encode()
    return hmac.new(workspace.signing_secret.encode(), label, hashlib.sha256).hexdigest()


def user_token(secret: str, user_id: str) -> str:
    """What the site's server computes: hex HMAC-SHA256 of the user id under the secret."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def token_matches(workspace: Workspace, user_id: str, token: str) -> bool:
    expected = user_token(identity_secret(workspace), user_id)
    return hmac.compare_digest(expected.encode(), token.strip().lower().encode())


def origin_allowed(workspace: Workspace, origin: str | None) -> bool:
    """With `allowed_origins` set, only pages of those origins may open the chat (and register
    push subscriptions); without it any origin may, the write key being public anyway."""
    allowed = chat_settings(workspace).get("allowed_origins")
    if not allowed:
        return True
    return origin is not None and origin.rstrip("/").lower() in {str(o).rstrip("/").lower() for o in allowed}
