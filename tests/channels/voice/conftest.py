"""The webhook tests' receiver and allowance, for the call.recorded event."""

from __future__ import annotations

from tests.channels.webhook.conftest import allow_private, receiver  # noqa: F401
