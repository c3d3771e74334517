"""Imports every domain's tables so the metadata (for Alembic and tests) is complete."""

from __future__ import annotations

from shopkeeper.auth import models as auth_models
from shopkeeper.consent import models as consent_models
from shopkeeper.customers import models as customer_models
from shopkeeper.db.base import Base
from shopkeeper.events import models as event_models
from shopkeeper.inbox import models as inbox_models
from shopkeeper.journeys import models as journey_models
from shopkeeper.journeys import optimiser_models
from shopkeeper.messaging import models as messaging_models
from shopkeeper.privacy import models as privacy_models
from shopkeeper.segments import models as segment_models
from shopkeeper.web import models as web_models

metadata = Base.metadata

__all__ = [
    "auth_models",
    "consent_models",
    "customer_models",
    "event_models",
    "inbox_models",
    "journey_models",
    "messaging_models",
    "metadata",
    "optimiser_models",
    "privacy_models",
    "segment_models",
    "web_models",
]
