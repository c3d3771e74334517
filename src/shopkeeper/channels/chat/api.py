"""Admin API for web chat: the identity secret a site signs user ids with, the allowed origins,
and the script tag to paste."""

from __future__ import annotations

import re

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopkeeper import clock
from shopkeeper.auth import service as auth_service
from shopkeeper.auth.models import Workspace
from shopkeeper.channels.chat.tokens import chat_settings, identity_secret, secret_version
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["chat"])
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$", re.IGNORECASE)


class ChatSettingsOut(BaseModel):
    identity_secret: str = Field(description="sign user ids with it: hex HMAC-SHA256(secret, user_id)")
    secret_version: int
    allowed_origins: list[str] = Field(description="pages allowed to open the chat; empty: any")
    widget_snippet: str


class ChatSettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_origins: list[str] | None = Field(default=None, max_length=50)
    rotate_identity_secret: bool = Field(default=False, description="tokens signed before stop working")

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for origin in value:
            if not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin such as https://shop.example")
        return [o.lower() for o in value]


def _out(workspace: Workspace, public_url: str) -> ChatSettingsOut:
    base = public_url.rstrip("/")
    snippet = (
        f'<script src="{base}/chat/widget.js" data-write-key="WRITE_KEY" '
        'data-user-id="USER_ID" data-user-token="HMAC_OF_USER_ID" async></script>'
    )
    origins = chat_settings(workspace).get("allowed_origins") or []
    return ChatSettingsOut(
        identity_secret=identity_secret(workspace),
        secret_version=secret_version(workspace),
        allowed_origins=[str(o) for o in origins],
        widget_snippet=snippet,
    )


@router.get("/chat/settings", summary="Web chat settings, with the identity secret (admin)")
def get_chat_settings(runtime: RuntimeDep, caller: Caller) -> ChatSettingsOut:
    caller.require("admin")
    with runtime.db.session() as session:
        workspace = session.get(Workspace, caller.workspace_id)
        if workspace is None:
            raise NotFound("workspace not found")
        return _out(workspace, runtime.settings.public_url)


@router.patch("/chat/settings", summary="Change the allowed origins or rotate the identity secret")
def patch_chat_settings(runtime: RuntimeDep, caller: Caller, body: ChatSettingsPatch) -> ChatSettingsOut:
    caller.require("admin")
    with runtime.db.session(write=True) as session:
        workspace = session.get(Workspace, caller.workspace_id)
        if workspace is None:
            raise NotFound("workspace not found")
        chat = chat_settings(workspace)
        if body.allowed_origins is not None:
            chat["allowed_origins"] = body.allowed_origins
        if body.rotate_identity_secret:
            chat["secret_version"] = secret_version(workspace) + 1
        workspace.settings = {**(workspace.settings or {}), "chat": chat}
        auth_service.audit(
            session,
            caller,
            "chat.settings",
            subject_type="workspace",
            subject_id=workspace.id,
            details=body.model_dump(exclude_unset=True),
            now=clock.now(),
        )
        session.flush()
        return _out(workspace, runtime.settings.public_url)
