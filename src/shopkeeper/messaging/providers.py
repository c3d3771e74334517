"""Which providers a workspace sends a channel through, built once per process and reused (an
SMTP connection stays open between messages), with each provider's rate limit."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from shopkeeper.channels import installed  # noqa: F401 - providers register themselves
from shopkeeper.channels.base import Provider, ProviderRegistry
from shopkeeper.db.scoping import scoped
from shopkeeper.messaging.models import ChannelProvider


class TokenBucket:
    """`rate` sends per second with a burst of one second's worth; `take` sleeps until allowed."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Blocks until a token is free; returns the seconds waited."""
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            self.tokens -= 1
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)
        return wait


@dataclass
class Route:
    """One provider a channel can go through, in failover order."""

    id: str  # the channel_providers row, or the default type ("dev") when the workspace has none
    name: str
    type: str
    provider: Provider
    cost_per_unit: float | None
    currency: str | None
    bucket: TokenBucket | None = None
    stamp: datetime | None = None


@dataclass
class ProviderPool:
    _routes: dict[str, Route] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def routes(self, session: Session, workspace_id: str, channel: str) -> list[Route]:
        rows = list(
            session.scalars(
                scoped(ChannelProvider, workspace_id)
                .where(ChannelProvider.channel == channel, ChannelProvider.enabled.is_(True))
                .order_by(ChannelProvider.priority, ChannelProvider.name)
            )
        )
        if not rows:
            return [self._default(channel)]
        return [self._route(row) for row in rows]

    def _default(self, channel: str) -> Route:
        type_ = ProviderRegistry.default_type(channel)
        key = f"{type_}:{channel}"
        with self._lock:
            route = self._routes.get(key)
            if route is None:
                provider = ProviderRegistry.create(channel, type_, {})
                route = self._routes[key] = Route(type_, type_, type_, provider, None, None)
            return route

    def _route(self, row: ChannelProvider) -> Route:
        with self._lock:
            route = self._routes.get(row.id)
            if route is not None and route.stamp == row.updated_at:
                return route
            if route is not None:
                route.provider.close()
            # The row id lets a provider name its own webhook URL (e.g. an SMS status callback).
            provider = ProviderRegistry.create(row.channel, row.type, {**row.settings, "provider_id": row.id})
            bucket = TokenBucket(row.rate_per_second) if row.rate_per_second else None
            route = Route(row.id, row.name, row.type, provider, row.cost_per_unit, row.currency, bucket, row.updated_at)
            self._routes[row.id] = route
            return route

    def close(self) -> None:
        with self._lock:
            for route in self._routes.values():
                route.provider.close()
            self._routes.clear()
