"""Public consent pages reached by signed links: preference centre, unsubscribe, opt-in confirmation."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["public consent pages"])
