"""Every inbox test needs inbound messages to reach the inbox, as in `serve`."""

from __future__ import annotations

from shopkeeper.inbox import hooks  # noqa: F401 - registers the inbound listener
from tests.messaging.conftest import smtp_sink, worker  # noqa: F401 - fixtures used here
