"""Imports every provider module so that each registers itself (one line per provider)."""

from __future__ import annotations

from shopkeeper.channels import dev  # noqa: F401
from shopkeeper.channels.chat import provider as _chat  # noqa: F401
from shopkeeper.channels.email import smtp  # noqa: F401
from shopkeeper.channels.push import hooks as _push_hooks  # noqa: F401
from shopkeeper.channels.push import webpush  # noqa: F401
from shopkeeper.channels.sms import provider as _sms  # noqa: F401
from shopkeeper.channels.social import messenger, telegram, whatsapp  # noqa: F401
from shopkeeper.channels.webhook import events, hooks, provider  # noqa: F401
