"""The one Settings object: the only place that reads the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_cache_dir() -> Path:
    """`shopkeeper` under the XDG cache directory: $XDG_CACHE_HOME when it is an absolute path
    (the XDG spec says to ignore a relative one), else ~/.cache."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME", ""))
    return (xdg if xdg.is_absolute() else Path.home() / ".cache") / "shopkeeper"


class Settings(BaseSettings):
    """Every knob has a default that works in embedded mode (SQLite file in the current directory)."""

    model_config = SettingsConfigDict(env_prefix="SHOPKEEPER_", extra="ignore")

    database_url: str = "sqlite:///./shopkeeper.db"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1, le=64)
    # SQLite `synchronous`: NORMAL survives a crash of the process (kill -9) with WAL;
    # FULL also survives a power cut, at the cost of an fsync per commit.
    sqlite_synchronous: str = Field(default="NORMAL", pattern="^(NORMAL|FULL|EXTRA)$")
    # Group commit: the writer takes whatever is queued, up to this many events, per transaction.
    ingest_max_group: int = Field(default=5000, ge=1)
    # Identity cache entries kept per process (bounded so memory stays flat with 1M customers).
    identity_cache_size: int = Field(default=200_000, ge=0)
    # Apply migrations when the server starts (default on the embedded SQLite store).
    auto_migrate: bool | None = None
    log_level: str = "info"
    # Where customers reach this server: the base of signed links (preference centre, unsubscribe,
    # opt-in confirmation). Set it to the public https address in production.
    public_url: str = "http://127.0.0.1:8000"
    # `shopkeeper serve` delivers sends itself unless separate `shopkeeper worker` processes do.
    delivery_in_process: bool = True
    # Outbound webhooks refuse private, loopback, link-local and multicast addresses (SSRF guard,
    # docs/webhooks.md); turn this on only where endpoints legitimately live on an internal network.
    webhook_allow_private: bool = False
    # Web push endpoints come from browsers: the same guard applies to them (docs/web-push.md);
    # on, http:// and private addresses are accepted too (a push service on an internal network).
    push_allow_private: bool = False
    # Inbound email (replies, bounces, complaints; docs/email-inbound.md): `shopkeeper serve` also
    # runs an SMTP server on this port when it is set. None: off.
    inbound_smtp_port: int | None = Field(default=None, ge=0, le=65535)
    inbound_smtp_host: str = "127.0.0.1"
    # The name the server gives in its greeting and its EHLO answer (the MX host name).
    inbound_smtp_hostname: str = "shopkeeper.invalid"
    # Larger messages are refused with 552 (before DATA when the client announces SIZE).
    inbound_smtp_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # PEM files for STARTTLS; without them the server offers no TLS.
    inbound_smtp_tls_cert: str | None = None
    inbound_smtp_tls_key: str | None = None
    # What a process may keep for the next one: the fitted inbox classifier, so that only the
    # first process after a change of data, code or library trains it (docs/inbox-classification.md).
    # Deleting the directory is always safe.
    cache_dir: Path = Field(default_factory=default_cache_dir)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
