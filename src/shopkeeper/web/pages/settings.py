"""Settings: a side navigation over the workspace's configuration — channels and providers,
topics, sensitive data, frequency caps and quiet hours, API keys, users and webhooks — each
section a module of `web.settings` calling the same services as the admin API."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from shopkeeper.web.session import Viewer
from shopkeeper.web.settings import channels, keys, policy, sensitive, topics, users, webhooks

router = APIRouter(include_in_schema=False)
for section in (channels, topics, sensitive, policy, keys, users, webhooks):
    router.include_router(section.router)


@router.get("/settings")
def settings_home(web: Viewer) -> RedirectResponse:
    return RedirectResponse("/settings/channels", status_code=303)
