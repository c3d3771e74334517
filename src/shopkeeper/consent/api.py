"""Admin API for consent: topics, subscriptions and their log, preferences, policy, decisions."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["consent"])
