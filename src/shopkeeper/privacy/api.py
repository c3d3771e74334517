"""Admin API for privacy: suppressions, sensitive traits and allowances, GDPR export and erasure.

One router for app.py to mount; each concern keeps its routes in its own module.
"""

from __future__ import annotations

from fastapi import APIRouter

from shopkeeper.privacy import api_gdpr, api_sensitive, api_suppressions

router = APIRouter(prefix="/api/v1", tags=["privacy"])
router.include_router(api_suppressions.router)
router.include_router(api_sensitive.router)
router.include_router(api_gdpr.router)
