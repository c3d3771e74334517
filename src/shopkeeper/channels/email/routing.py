"""Which workspace an inbound email belongs to, by its recipient address.

Each workspace claims addresses and domains in `settings["inbound_email"]`: an entry with an @
(`support@shop.example`) claims that mailbox, an entry without (`shop.example`, or
`@shop.example`) claims every mailbox of the domain. A `+tag` in the recipient's local part is
ignored for routing (`bounces+snd_123@shop.example` is `bounces@shop.example`) and handed on:
VERP bounce addresses carry the send id there. An exact mailbox beats a domain; if two
workspaces claim the same thing anyway (the API refuses it, see `check_claims`), the older one
wins. A recipient that nobody claims is refused at RCPT with 550.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.errors import Conflict, Invalid

SETTING = "inbound_email"
MAX_CLAIMS = 50
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")
# Dot-atom without "+": the tag after a "+" is free, so it cannot be part of a claimed mailbox.
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*/=?^_`{|}~-]+)*$")
_FIELD = f"settings.{SETTING}"


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str  # as received, lower-cased
    mailbox: str  # without the +tag: what a claim names
    tag: str | None
    workspace_id: str


def split_tag(address: str) -> tuple[str, str | None] | None:
    """`local+tag@domain` → (`local@domain`, `tag`); None when it is not an address at all."""
    address = address.strip().strip("<>").strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    base, plus, tag = local.partition("+")
    if not base:
        return None
    return f"{base}@{domain}", (tag or None) if plus else None


def normalise_claim(raw: Any) -> str:
    """A mailbox (lower-cased, validated) or a bare domain."""
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid(f"{_FIELD}: each entry is an email address or a domain", field=_FIELD)
    value = raw.strip().lower().removeprefix("@")
    if "@" in value:
        local, _, domain = value.rpartition("@")
        if not _LOCAL.match(local) or not _DOMAIN.match(domain):
            raise Invalid(f"{_FIELD}: {raw!r} is not a mailbox (a +tag is not part of one)", field=_FIELD)
        return value
    if not _DOMAIN.match(value):
        raise Invalid(f"{_FIELD}: {raw!r} is neither an email address nor a domain", field=_FIELD)
    return value


def normalise_claims(values: Iterable[Any]) -> list[str]:
    claims = list(dict.fromkeys(normalise_claim(v) for v in values))
    if len(claims) > MAX_CLAIMS:
        raise Invalid(f"{_FIELD}: at most {MAX_CLAIMS} entries", field=_FIELD)
    return claims


def claims_of(settings: Mapping[str, Any] | None) -> list[str]:
    """What a workspace claims; entries that are not valid (set by hand in the database) are ignored."""
    raw = (settings or {}).get(SETTING)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    claims = []
    for value in raw:
        try:
            claims.append(normalise_claim(value))
        except Invalid:
            continue
    return claims


def _claimants(session: Session) -> list[tuple[str, list[str]]]:
    # One small read per recipient: correct the moment settings change, and inbound mail is
    # rare next to the ingest path. A cache belongs here if a measurement ever asks for one.
    rows = session.execute(select(Workspace.id, Workspace.settings).order_by(Workspace.created_at, Workspace.id))
    return [(ws_id, claims) for ws_id, settings in rows if (claims := claims_of(settings))]


def route(session: Session, address: str) -> Recipient | None:
    parts = split_tag(address)
    if parts is None:
        return None
    mailbox, tag = parts
    domain = mailbox.rpartition("@")[2]
    by_domain: str | None = None
    for ws_id, claims in _claimants(session):
        if mailbox in claims:
            return Recipient(address.strip().strip("<>").lower(), mailbox, tag, ws_id)
        if by_domain is None and domain in claims:
            by_domain = ws_id
    if by_domain is None:
        return None
    return Recipient(address.strip().strip("<>").lower(), mailbox, tag, by_domain)


def check_claims(session: Session, workspace_id: str, claims: Iterable[str]) -> None:
    """Refuse a mailbox or domain that another workspace claims already: mail to it could only
    ever reach one of them."""
    wanted = set(claims)
    for ws_id, theirs in _claimants(session):
        if ws_id == workspace_id:
            continue
        taken = sorted(wanted & set(theirs))
        if taken:
            raise Conflict(f"{_FIELD}: {taken[0]!r} receives mail for another workspace already", field=_FIELD)
