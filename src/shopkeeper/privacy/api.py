"""Admin API for privacy: suppressions, sensitive traits and allowances, GDPR export and erasure."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["privacy"])
